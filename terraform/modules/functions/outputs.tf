output "function_arns" {
  description = "ARN of every function, by contract name (validate_dataset, ...)."
  value       = { for k, f in aws_lambda_function.this : k => f.arn }
}

output "function_names" {
  description = "Name of every function, by contract name."
  value       = { for k, f in aws_lambda_function.this : k => f.function_name }
}

output "role_arn" {
  description = "IAM role of the functions (mapped into EKS by an access entry)."
  value       = aws_iam_role.functions.arn
}

output "role_name" {
  description = "Name of the functions' IAM role."
  value       = aws_iam_role.functions.name
}

output "security_group_id" {
  description = "Security group of the functions."
  value       = aws_security_group.functions.id
}

output "environment" {
  description = "The CONTROL_* settings every function gets."
  value       = local.environment
  sensitive   = true
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue (CONTROL_DEAD_LETTER_QUEUE_URL)."
  value       = aws_sqs_queue.dead_letter.url
}

output "alerts_topic_arn" {
  description = "SNS topic Alertmanager publishes to."
  value       = aws_sns_topic.alerts.arn
}

output "alert_token_secret_arn" {
  description = "Secret holding the alert webhook token (CONTROL_ALERT_TOKEN_SECRET_ARN)."
  value       = aws_secretsmanager_secret.alert_token.arn
}

output "api_url" {
  description = "Base URL of the REST API."
  value       = aws_api_gateway_stage.api.invoke_url
}

output "api_callers_policy_arn" {
  description = "IAM policy that lets a role or group call the API (IAM auth, SigV4)."
  value       = aws_iam_policy.api_callers.arn
}

output "policy_json" {
  description = "The functions' IAM policy, as JSON (for audits and tests)."
  value       = jsonencode(local.function_policy)
}
