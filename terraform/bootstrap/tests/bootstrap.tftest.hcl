# Run from terraform/bootstrap: terraform test
mock_provider "aws" {
  source = "../envs/example/tests/mocks"
}

variables {
  name       = "acme-mlcp"
  region     = "eu-west-1"
  account_id = "123456789012"
}

run "state_backend" {
  command = apply

  assert {
    condition     = aws_dynamodb_table.lock.hash_key == "LockID" && one(aws_dynamodb_table.lock.point_in_time_recovery).enabled
    error_message = "The lock table is keyed by LockID (what the S3 backend writes) and has point-in-time recovery."
  }
  assert {
    condition     = one(aws_dynamodb_table.lock.server_side_encryption).enabled && one(aws_dynamodb_table.lock.server_side_encryption).kms_key_arn == module.kms.key_arn
    error_message = "The lock table is encrypted with the state key."
  }
  assert {
    condition     = output.backend_config.dynamodb_table == "acme-mlcp-tfstate-lock" && output.backend_config.encrypt
    error_message = "The backend config names the lock table and encrypts."
  }
}
