locals {
  execution_arns = [
    for arn in var.state_machine_arns : "${replace(arn, ":stateMachine:", ":execution:")}:*"
  ]

  function_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = [for g in aws_cloudwatch_log_group.function : "${g.arn}:*"]
      },
      {
        # Lambda needs these to attach the functions to the VPC; EC2 does not scope them to a resource.
        Sid      = "AttachToVpc"
        Effect   = "Allow"
        Action   = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
        Resource = ["*"]
      },
      {
        Sid      = "Tracing"
        Effect   = "Allow"
        Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
        Resource = ["*"]
      },
      {
        # The version an S3 event named: a dataset overwritten after its event is still validated as it was.
        Sid      = "ReadDatasets"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:GetObjectVersion"]
        Resource = ["${var.data_bucket.arn}/datasets/*"]
      },
      {
        # The training job writes artifacts with its own role; the functions only read and hash them.
        Sid      = "ReadModelArtifacts"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["${var.artifacts_bucket_arn}/models/*"]
      },
      {
        # Without it S3 answers 403 instead of 404 for a missing key, and "not found" could not be told apart.
        Sid      = "ListStores"
        Effect   = "Allow"
        Action   = ["s3:ListBucket"]
        Resource = [var.data_bucket.arn, var.artifacts_bucket_arn]
      },
      {
        Sid    = "Registry"
        Effect = "Allow"
        Action = [
          "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
          "dynamodb:TransactWriteItems",
        ]
        Resource = [var.registry_table_arn, "${var.registry_table_arn}/index/gsi1"]
      },
      {
        Sid      = "StartPipelines"
        Effect   = "Allow"
        Action   = ["states:StartExecution"]
        Resource = var.state_machine_arns
      },
      {
        Sid      = "WatchPipelines"
        Effect   = "Allow"
        Action   = ["states:DescribeExecution", "states:GetExecutionHistory"] # GET /training-runs/{id}/timeline
        Resource = local.execution_arns
      },
      {
        Sid      = "DeadLetter"
        Effect   = "Allow"
        Action   = ["sqs:SendMessage"]
        Resource = [aws_sqs_queue.dead_letter.arn]
      },
      {
        Sid      = "AlertToken"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [aws_secretsmanager_secret.alert_token.arn]
      },
      {
        Sid      = "FindCluster"
        Effect   = "Allow"
        Action   = ["eks:DescribeCluster"]
        Resource = [var.cluster_arn]
      },
      {
        # Lambda mounts stage_dataset's access point with the function's role; writes are the staged datasets.
        Sid       = "MountCheckpointFileSystem"
        Effect    = "Allow"
        Action    = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
        Resource  = [var.checkpoint_file_system.file_system_arn]
        Condition = { StringEquals = { "elasticfilesystem:AccessPointArn" = var.checkpoint_file_system.access_point_arn } }
      },
      {
        Sid      = "UsePlatformKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
        Resource = [var.kms_key_arn]
      },
    ]
  }
}

resource "aws_iam_role" "functions" {
  name = "${var.name_prefix}-functions"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "functions" {
  name   = "control-plane-least-privilege"
  role   = aws_iam_role.functions.id
  policy = jsonencode(local.function_policy)
}
