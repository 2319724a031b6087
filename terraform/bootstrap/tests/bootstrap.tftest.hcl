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

run "github_oidc_roles" {
  command = apply

  variables {
    github_repository = "acme/mlcp"
  }

  assert {
    condition     = one(aws_iam_openid_connect_provider.github).url == "https://token.actions.githubusercontent.com" && one(aws_iam_openid_connect_provider.github).client_id_list == toset(["sts.amazonaws.com"])
    error_message = "Actions get credentials from GitHub's OIDC provider, for STS only."
  }
  assert {
    condition     = toset(keys(aws_iam_role.github)) == toset(["plan", "deploy"]) && toset(keys(output.github_role_arns)) == toset(["plan", "deploy"])
    error_message = "A plan role and a deploy role."
  }
  assert {
    condition     = jsondecode(aws_iam_role.github["deploy"].assume_role_policy).Statement[0].Condition.StringEquals["token.actions.githubusercontent.com:sub"] == ["repo:acme/mlcp:environment:production"]
    error_message = "Only the production environment (behind its approval) may assume the deploy role."
  }
}

run "no_github_no_roles" {
  command = apply

  assert {
    condition     = length(aws_iam_openid_connect_provider.github) == 0 && length(aws_iam_role.github) == 0
    error_message = "Without github_repository nothing is made for GitHub."
  }
}

run "github_repository_is_owner_and_name" {
  command = plan
  variables {
    github_repository = "not a repo"
  }
  expect_failures = [var.github_repository]
}
