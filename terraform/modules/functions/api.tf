# REST API in front of api_handler (Chalice's app.app): every route is Chalice's. API Gateway
# authenticates every call with IAM (SigV4: the CLI signs with the caller's AWS credentials) but
# GET /healthz and GET /openapi.json, which are public. The app runs with CONTROL_API_AUTH=iam:
# it refuses a request that carries no caller identity and records the caller's ARN as the actor.
# Alerts reach the control plane through SNS (on_alert_notification), not the webhook route.
resource "aws_api_gateway_rest_api" "this" {
  name = "${var.name_prefix}-api"
  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_resource" "proxy" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "{proxy+}"
}

# The two public routes, as resources of their own: API Gateway prefers them to {proxy+}.
resource "aws_api_gateway_resource" "public" {
  for_each = { healthz = "healthz", openapi = "openapi.json" }

  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = each.value
}

resource "aws_api_gateway_method" "this" {
  # checkov:skip=CKV2_AWS_53:Requests are validated by the app, which returns a 400 naming the bad field; a Gateway model would duplicate it for a proxy route.
  for_each = { root = aws_api_gateway_rest_api.this.root_resource_id, proxy = aws_api_gateway_resource.proxy.id }

  rest_api_id   = aws_api_gateway_rest_api.this.id
  resource_id   = each.value
  http_method   = "ANY"
  authorization = "AWS_IAM"
}

resource "aws_api_gateway_method" "public" {
  # checkov:skip=CKV_AWS_59:GET /healthz and GET /openapi.json are public by design (health checks, API discovery); they read no data and change nothing. Every other route is AWS_IAM.
  # checkov:skip=CKV2_AWS_53:These GETs take no body or parameters to validate.
  for_each = aws_api_gateway_resource.public

  rest_api_id   = aws_api_gateway_rest_api.this.id
  resource_id   = each.value.id
  http_method   = "GET"
  authorization = "NONE"
}

resource "aws_api_gateway_integration" "this" {
  for_each = merge(aws_api_gateway_method.this, aws_api_gateway_method.public)

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = each.value.resource_id
  http_method             = each.value.http_method
  integration_http_method = "POST"
  type                    = "AWS_PROXY"
  uri                     = aws_lambda_function.this["api_handler"].invoke_arn
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  triggers = {
    redeploy = sha1(jsonencode([aws_api_gateway_resource.proxy, aws_api_gateway_resource.public, aws_api_gateway_method.this, aws_api_gateway_method.public, aws_api_gateway_integration.this]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/mlcp/${var.name_prefix}/api-access"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_api_gateway_stage" "api" {
  # checkov:skip=CKV_AWS_120:Responses are per-request state (runs, registry, rollouts); caching them would serve stale state.
  # checkov:skip=CKV2_AWS_51:Clients are people and CI signing with SigV4 over public TLS; there is no backend mTLS hop to certify (the integration is Lambda).
  # checkov:skip=CKV2_AWS_29:WAF is a cost/security lever documented in terraform/README.md; stage throttling caps abuse and every route but health and the OpenAPI document needs SigV4.
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = "api"
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId = "$context.requestId", ip = "$context.identity.sourceIp", method = "$context.httpMethod",
      path      = "$context.path", status = "$context.status", latencyMs = "$context.responseLatency"
    })
  }

  depends_on = [aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  # checkov:skip=CKV_AWS_225:Caching is off on purpose (responses are per-request state), so there is no cache to encrypt.
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.api.stage_name
  method_path = "*/*"

  settings {
    caching_enabled        = false
    metrics_enabled        = true
    logging_level          = "INFO"
    data_trace_enabled     = false
    throttling_rate_limit  = 50
    throttling_burst_limit = 100
  }
}

# Attach to the roles and groups of the API's callers (operators, CI): SigV4-signed calls pass.
resource "aws_iam_policy" "api_callers" {
  name        = "${var.name_prefix}-api-callers"
  description = "Call every route of the mlcp API (${var.name_prefix}) through API Gateway's IAM auth."
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = "execute-api:Invoke"
      Resource = "${aws_api_gateway_rest_api.this.execution_arn}/${aws_api_gateway_stage.api.stage_name}/*/*"
    }]
  })
}

resource "aws_lambda_permission" "api_invokes_handler" {
  statement_id  = "AllowApiGateway"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this["api_handler"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/*/*"
}

resource "aws_iam_role" "api_gateway_logs" {
  count = var.manage_api_gateway_account ? 1 : 0

  name = "${var.name_prefix}-apigateway-logs"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "apigateway.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy_attachment" "api_gateway_logs" {
  count = var.manage_api_gateway_account ? 1 : 0

  role       = aws_iam_role.api_gateway_logs[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.manage_api_gateway_account ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.api_gateway_logs[0].arn
}
