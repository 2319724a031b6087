# GitHub Actions deploys with short-lived credentials from GitHub's OIDC provider: no access key
# is stored anywhere. Two roles: `plan` (pull requests: read-only, plus the state lock) and
# `deploy` (the main branch, only in the `production` environment, which requires an approval).
locals {
  github            = var.github_repository != null
  github_oidc_host  = "token.actions.githubusercontent.com"
  github_repo_claim = "repo:${coalesce(var.github_repository, "none/none")}"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = local.github ? 1 : 0

  url            = "https://${local.github_oidc_host}"
  client_id_list = ["sts.amazonaws.com"]
}

locals {
  github_subjects = local.github ? {
    plan   = ["${local.github_repo_claim}:pull_request", "${local.github_repo_claim}:ref:refs/heads/main"]
    deploy = ["${local.github_repo_claim}:environment:production"]
  } : {}
}

resource "aws_iam_role" "github" {
  for_each = local.github_subjects

  name                 = "${var.name}-github-${each.key}"
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRoleWithWebIdentity"
      Principal = { Federated = aws_iam_openid_connect_provider.github[0].arn }
      Condition = {
        StringEquals = {
          "${local.github_oidc_host}:aud" = "sts.amazonaws.com"
          "${local.github_oidc_host}:sub" = each.value
        }
      }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "github_plan_read_only" {
  count = local.github ? 1 : 0

  role       = aws_iam_role.github["plan"].name
  policy_arn = "arn:aws:iam::aws:policy/ReadOnlyAccess"
}

# Applying the platform creates IAM roles and policies (IRSA, functions): PowerUserAccess plus IAM
# limited to the platform's own names.
resource "aws_iam_role_policy_attachment" "github_deploy_power_user" {
  count = local.github ? 1 : 0

  role       = aws_iam_role.github["deploy"].name
  policy_arn = "arn:aws:iam::aws:policy/PowerUserAccess"
}

resource "aws_iam_role_policy" "github_deploy_iam" {
  count = local.github ? 1 : 0

  name = "platform-iam"
  role = aws_iam_role.github["deploy"].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "PlatformRolesAndPolicies"
        Effect = "Allow"
        Action = [
          "iam:AttachRolePolicy", "iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:CreateRole",
          "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:DeleteRole", "iam:DeleteRolePolicy",
          "iam:DetachRolePolicy", "iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetRole", "iam:GetRolePolicy",
          "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:ListPolicyVersions",
          "iam:ListRolePolicies", "iam:PassRole", "iam:PutRolePolicy", "iam:TagPolicy", "iam:TagRole",
          "iam:UntagRole", "iam:UpdateAssumeRolePolicy",
        ]
        Resource = ["arn:aws:iam::${var.account_id}:role/mlcp-*", "arn:aws:iam::${var.account_id}:policy/mlcp-*"]
      },
      {
        Sid    = "PlatformOidcProviderForIrsa"
        Effect = "Allow"
        Action = [
          "iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:GetOpenIDConnectProvider",
          "iam:TagOpenIDConnectProvider",
        ]
        Resource = ["arn:aws:iam::${var.account_id}:oidc-provider/oidc.eks.*"]
      },
    ]
  })
}

# Both roles read, write and lock the state (plan writes no state, but `terraform plan` takes the lock).
resource "aws_iam_role_policy" "github_state" {
  for_each = aws_iam_role.github

  name = "terraform-state"
  role = each.value.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "State"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:ListBucket", "s3:PutObject"]
        Resource = [module.state_bucket.arn, "${module.state_bucket.arn}/*"]
      },
      {
        Sid      = "Lock"
        Effect   = "Allow"
        Action   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"]
        Resource = [aws_dynamodb_table.lock.arn]
      },
      {
        Sid      = "StateKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
        Resource = [module.kms.key_arn]
      },
    ]
  })
}
