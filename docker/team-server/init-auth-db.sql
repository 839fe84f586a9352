-- The auth app keeps its users and permissions in a database of its own, owned by the same role.
CREATE DATABASE mlflow_auth OWNER mlflow;
