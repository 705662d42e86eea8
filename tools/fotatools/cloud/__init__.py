"""A local stand-in for AWS IoT: MQTT broker with the Jobs device API, object store with
presigned URLs, and a control API (used by `LocalBackend`). Start it with
`fotatools.cloud.daemon.start(home)`."""
