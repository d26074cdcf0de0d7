"""The lake itself: where HOME keeps each layer, how Delta tables are read and written, how a YAML file is
loaded with errors a data engineer can act on, and the city's time zone.

Every other package (``connectors``, ``models``, ``quality``, ``pipelines``) depends on this one and it on
none of them, so a path, a write mode or the time zone is decided in one place.
"""
