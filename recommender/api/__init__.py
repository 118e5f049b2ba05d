"""The HTTP service: a thin FastAPI shell over :mod:`recommender.recommend`."""
