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
