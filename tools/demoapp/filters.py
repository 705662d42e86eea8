"""Small signal filters for sensor readings."""


class MovingAverage:
    """Mean of the last n values."""

    def __init__(self, n):
        self.values = [0.0] * n
        self.n = 0
        self.i = 0
        self.total = 0.0

    def add(self, value):
        self.total += value - self.values[self.i]
        self.values[self.i] = value
        self.i = (self.i + 1) % len(self.values)
        if self.n < len(self.values):
            self.n += 1
        return self.total / self.n


class Hysteresis:
    """On above `high`, off below `low`, unchanged in between."""

    def __init__(self, low, high):
        self.low, self.high = low, high
        self.on = False

    def update(self, value):
        if value >= self.high:
            self.on = True
        elif value <= self.low:
            self.on = False
        return self.on
