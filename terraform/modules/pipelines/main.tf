locals {
  state_machine_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "InvokeTaskLambdas"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = flatten([for f in local.task_functions : [var.function_arns[f], "${var.function_arns[f]}:*"]])
      },
      {
        # The training pipeline starts the rollout as a child execution and waits for it.
        Sid      = "StartRollout"
        Effect   = "Allow"
        Action   = ["states:StartExecution"]
        Resource = [aws_sfn_state_machine.rollout.arn]
      },
      {
        Sid      = "WatchRollout"
        Effect   = "Allow"
        Action   = ["states:DescribeExecution", "states:StopExecution"]
        Resource = ["${replace(aws_sfn_state_machine.rollout.arn, ":stateMachine:", ":execution:")}:*"]
      },
      {
        Sid      = "SyncChildExecutions"
        Effect   = "Allow"
        Action   = ["events:PutTargets", "events:PutRule", "events:DescribeRule"]
        Resource = ["arn:aws:events:*:*:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"]
      },
      {
        # CloudWatch Logs delivery APIs take no resource ARN (AWS documents Resource "*").
        Sid    = "DeliverExecutionLogs"
        Effect = "Allow"
        Action = [
          "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
          "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
        ]
        Resource = ["*"]
      },
      {
        Sid      = "Tracing"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
        Resource = ["*"]
      },
      {
        Sid      = "UsePlatformKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [var.kms_key_arn]
      },
    ]
  }

  task_functions = ["validate_dataset", "stage_dataset", "launch_training", "check_training", "evaluate_model", "register_model", "record_run_failure", "start_rollout", "reconcile_rollout"]

  task_arns = { for f in local.task_functions : "${f}_arn" => var.function_arns[f] }

  rollout_definition = templatefile("${var.definitions_dir}/rollout.asl.json", local.task_arns)
  training_definition = templatefile("${var.definitions_dir}/training_pipeline.asl.json", merge(local.task_arns, {
    rollout_state_machine_arn = aws_sfn_state_machine.rollout.arn
  }))
}

resource "aws_cloudwatch_log_group" "this" {
  for_each = { training = var.training_state_machine_name, rollout = var.rollout_state_machine_name }

  name              = "/aws/vendedlogs/states/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_iam_role" "state_machines" {
  name = "${var.name_prefix}-state-machines"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "states.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "state_machines" {
  name   = "invoke-tasks-and-log"
  role   = aws_iam_role.state_machines.id
  policy = jsonencode(local.state_machine_policy)
}

resource "aws_sfn_state_machine" "rollout" {
  name       = var.rollout_state_machine_name
  role_arn   = aws_iam_role.state_machines.arn
  definition = local.rollout_definition
  type       = "STANDARD"

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.this["rollout"].arn}:*"
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = var.kms_key_arn
    kms_data_key_reuse_period_seconds = 300
  }
}

resource "aws_sfn_state_machine" "training" {
  name       = var.training_state_machine_name
  role_arn   = aws_iam_role.state_machines.arn
  definition = local.training_definition
  type       = "STANDARD"

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.this["training"].arn}:*"
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }

  encryption_configuration {
    type                              = "CUSTOMER_MANAGED_KMS_KEY"
    kms_key_id                        = var.kms_key_arn
    kms_data_key_reuse_period_seconds = 300
  }
}
