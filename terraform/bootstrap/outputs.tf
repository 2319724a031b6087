output "backend_config" {
  description = "Values for the platform environment's backend.hcl."
  value = {
    bucket         = module.state_bucket.id
    region         = var.region
    dynamodb_table = aws_dynamodb_table.lock.name
    kms_key_id     = module.kms.key_arn
    encrypt        = true
  }
}

output "github_role_arns" {
  description = "Roles the workflows assume through OIDC: plan (pull requests) and deploy (main, environment production)."
  value       = { for name, role in aws_iam_role.github : name => role.arn }
}
