# Rancher 1.x catalog template, compose format version 2.
#
# This file is a Go template (".tpl", rendered by Rancher >= v1.6.13 before the
# question answers are interpolated), like infra-templates/ecr/1 of rancher-catalog. The
# template picks either the agent labels ("this environment": Rancher creates an
# agent key and injects CATTLE_URL / CATTLE_ACCESS_KEY / CATTLE_SECRET_KEY) or
# the hand-given endpoint and keys ("another environment"), and leaves out the
# optional AWS variables that were left empty.
version: '2'
services:
  ecr-updater:
    image: ghcr.io/rancher-ecr-credentials/rancher-ecr-credentials:0.1.0
    environment:
      AWS_REGION: ${aws_region}
      {{- if .Values.aws_access_key_id }}
      AWS_ACCESS_KEY_ID: ${aws_access_key_id}
      AWS_SECRET_ACCESS_KEY: ${aws_secret_access_key}
      {{- end }}
      {{- if .Values.aws_ecr_registry_ids }}
      AWS_ECR_REGISTRY_IDS: ${aws_ecr_registry_ids}
      {{- end }}
      {{- if .Values.aws_role_arn }}
      AWS_ROLE_ARN: ${aws_role_arn}
      {{- end }}
      {{- if .Values.aws_role_external_id }}
      AWS_ROLE_EXTERNAL_ID: ${aws_role_external_id}
      {{- end }}
      AUTO_CREATE: ${auto_create}
      LOG_LEVEL: ${log_level}
      LOG_FORMAT: ${log_format}
      # The Rancher health check connects from the network agent, so the
      # daemon must listen on the managed-network address, not on localhost.
      LISTEN_ADDRESS: 0.0.0.0
      LISTEN_PORT: '8080'
      {{- if eq .Values.registry_in_which_environment "other" }}
      CATTLE_URL: ${environment_api_endpoint}
      CATTLE_ACCESS_KEY: ${environment_api_access_key}
      CATTLE_SECRET_KEY: ${environment_api_secret_key}
      {{- end }}
    labels:
      io.rancher.container.pull_image: always
      {{- if eq .Values.registry_in_which_environment "current" }}
      io.rancher.container.create_agent: 'true'
      io.rancher.container.agent.role: environment
      {{- end }}
    # The old template set "tty: true" and "stdin_open: true". They are left
    # out on purpose: a TTY turns "\n" into "\r\n" in the logs, which breaks
    # LOG_FORMAT=json, and the daemon never reads stdin.
    mem_reservation: 33554432
    mem_limit: 67108864
