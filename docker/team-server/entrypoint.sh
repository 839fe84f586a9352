#!/bin/sh
# Writes MLflow's auth config from the environment (mode 600), then starts the server. The database
# URL and the admin password reach mlflow through the environment, never its command line.
set -eu
umask 077
export MLFLOW_AUTH_CONFIG_PATH="$HOME/basic_auth.ini"
python - <<'PY'
import os, string
text = open("/etc/mlflow/basic_auth.ini.template").read()
open(os.environ["MLFLOW_AUTH_CONFIG_PATH"], "w").write(string.Template(text).substitute(os.environ))
PY
export MLFLOW_BACKEND_STORE_URI="postgresql+psycopg://mlflow:${WORKBENCH_PG_PASSWORD}@postgres:5432/mlflow"
exec mlflow server --app-name basic-auth --serve-artifacts --artifacts-destination /artifacts \
    --host 0.0.0.0 --port 5000 --workers "${MLFLOW_WORKERS:-2}" --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-localhost,127.0.0.1}"
