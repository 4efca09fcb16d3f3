"""The error every loader raises for bad input: it names the file, the line and what is wrong."""


class DataError(ValueError):
    """A data file or folder that cannot be read as a palette data set."""
