data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition

  # docs/contracts.md: one Chalice app, one zip, these handlers.
  handlers = {
    api_handler           = { handler = "app.app", timeout = 30 }
    on_dataset_uploaded   = { handler = "app.on_dataset_uploaded", timeout = 60 }
    on_alert_notification = { handler = "app.on_alert_notification", timeout = 60 }
    validate_dataset      = { handler = "app.validate_dataset", timeout = 300 }
    stage_dataset         = { handler = "app.stage_dataset", timeout = 900 }
    launch_training       = { handler = "app.launch_training", timeout = 60 }
    check_training        = { handler = "app.check_training", timeout = 60 }
    evaluate_model        = { handler = "app.evaluate_model", timeout = 120 }
    register_model        = { handler = "app.register_model", timeout = 60 }
    record_run_failure    = { handler = "app.record_run_failure", timeout = 60 }
    start_rollout         = { handler = "app.start_rollout", timeout = 60 }
    reconcile_rollout     = { handler = "app.reconcile_rollout", timeout = 120 }
    sweep_rollouts        = { handler = "app.sweep_rollouts", timeout = 60 }
  }

  function_names = { for k, _ in local.handlers : k => "${var.name_prefix}-${k}" }

  # stage_dataset (writes staged datasets, applies retention after each) and the API (POST
  # /retention) mount the checkpoint file system's access point where the training pods mount its
  # claim, so a path means the same thing to the Lambdas and to the ranks.
  efs_functions  = toset(["stage_dataset", "api_handler"])
  efs_mount_path = "/mnt/checkpoints"

  environment = merge(var.environment, {
    CONTROL_DEAD_LETTER_QUEUE_URL  = aws_sqs_queue.dead_letter.url
    CONTROL_ALERT_TOKEN_SECRET_ARN = aws_secretsmanager_secret.alert_token.arn
    # API Gateway checks SigV4 (api.tf, AWS_IAM); the app refuses a request without the
    # caller's identity, and records that ARN as the actor.
    CONTROL_API_AUTH = "iam"
    # Powertools' service: the dimension that tells one stage's CloudWatch counts from another's.
    POWERTOOLS_SERVICE_NAME         = var.name_prefix
    CONTROL_INGRESS_SCHEME          = var.ingress.scheme
    CONTROL_INGRESS_CERTIFICATE_ARN = var.ingress.certificate_arn
    CONTROL_EFS_MOUNT_PATH          = local.efs_mount_path
  })
}

resource "aws_sqs_queue" "dead_letter" {
  name                              = "${var.name_prefix}-dead-letter"
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  message_retention_seconds         = 1209600
}

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-alerts"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_secretsmanager_secret" "alert_token" {
  # checkov:skip=CKV2_AWS_57:The webhook token is shared with Alertmanager's config; rotating it is a two-sided change done by the operator (README: "Rotating the alert token"), not a Lambda rotation.
  name                    = "${var.name_prefix}/alert-webhook-token"
  description             = "Bearer token Alertmanager presents to the alert webhook; its value is set out of band (never in Terraform state)."
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.function_names

  name              = "/aws/lambda/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_security_group" "functions" {
  name        = "${var.name_prefix}-functions"
  description = "Control-plane Lambdas: HTTPS to AWS APIs and the EKS API, Prometheus inside the VPC"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name_prefix}-functions" }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.functions.id
  description       = "HTTPS to AWS APIs (endpoints or NAT) and the EKS API"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "prometheus" {
  security_group_id = aws_security_group.functions.id
  description       = "Prometheus HTTP API inside the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 9090
  to_port           = 9090
}

resource "aws_vpc_security_group_egress_rule" "nfs" {
  security_group_id            = aws_security_group.functions.id
  description                  = "NFS to the checkpoint file system (stage_dataset writes the staged datasets)"
  referenced_security_group_id = var.checkpoint_file_system.security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_272:The zip is built and checksummed by CI (source_code_hash); AWS Signer code signing is a documented hardening lever, not set up here.
  for_each = local.handlers

  function_name                  = local.function_names[each.key]
  role                           = aws_iam_role.functions.arn
  runtime                        = "python3.11"
  handler                        = each.value.handler
  filename                       = var.package_path
  source_code_hash               = filebase64sha256(var.package_path)
  memory_size                    = var.memory_mb
  timeout                        = each.value.timeout
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = local.environment
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.functions.id]
  }

  dynamic "file_system_config" {
    for_each = contains(local.efs_functions, each.key) ? [var.checkpoint_file_system.access_point_arn] : []
    content {
      arn              = file_system_config.value
      local_mount_path = local.efs_mount_path
    }
  }

  tracing_config {
    mode = "Active"
  }

  # Asynchronous invocations (S3, SNS) that fail every retry land here, with the event.
  dead_letter_config {
    target_arn = aws_sqs_queue.dead_letter.arn
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  depends_on = [aws_iam_role_policy.functions]
}

# S3 → on_dataset_uploaded. A failed event goes to the dead-letter queue with its context.
resource "aws_lambda_function_event_invoke_config" "on_dataset_uploaded" {
  function_name                = aws_lambda_function.this["on_dataset_uploaded"].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dead_letter.arn
    }
  }
}

resource "aws_lambda_permission" "s3_invokes_dataset_handler" {
  statement_id   = "AllowDataBucket"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this["on_dataset_uploaded"].function_name
  principal      = "s3.amazonaws.com"
  source_arn     = var.data_bucket.arn
  source_account = var.account_id
}

resource "aws_s3_bucket_notification" "datasets" {
  bucket = var.data_bucket.id

  lambda_function {
    lambda_function_arn = aws_lambda_function.this["on_dataset_uploaded"].arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = "datasets/"
  }

  depends_on = [aws_lambda_permission.s3_invokes_dataset_handler]
}

# Alertmanager (sns_configs, IRSA role in the addons) → SNS → on_alert_notification.
resource "aws_lambda_function_event_invoke_config" "on_alert_notification" {
  function_name                = aws_lambda_function.this["on_alert_notification"].function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 3600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dead_letter.arn
    }
  }
}

resource "aws_lambda_permission" "sns_invokes_alert_handler" {
  statement_id  = "AllowAlertTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["on_alert_notification"].function_name
  principal     = "sns.amazonaws.com"
  source_arn    = aws_sns_topic.alerts.arn
}

resource "aws_sns_topic_subscription" "alerts" {
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.this["on_alert_notification"].arn
}
