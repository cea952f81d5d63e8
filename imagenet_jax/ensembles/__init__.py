"""Many models as one: ensembles of runs (model.py, evaluate.py) and model soups (soup.py, soup_job.py)."""
