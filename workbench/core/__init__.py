"""The core data: variants, datasets, the experiment definition, run results, the results-table
schema, labels, errors, and the services every layer shares (redaction, HTML templates).

Nothing here calls a model or writes to MLflow.
"""
