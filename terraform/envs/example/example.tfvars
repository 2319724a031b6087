# Example environment: copy, fill in, then
#   terraform init -backend-config=backend.hcl && terraform apply -var-file=example.tfvars
environment        = "prod"
region             = "eu-west-1"
account_id         = "123456789012"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.40.0.0/16"
bucket_prefix      = "acme-mlcp-prod"
replication_region = "eu-central-1"

kubernetes_version          = "1.31"
cluster_public_access_cidrs = []
cluster_admin_role_arns     = ["arn:aws:iam::123456789012:role/platform-admin"]

lambda_package_path = "../../../build/lambda/mlcp-functions.zip"
image_tag           = "3f9c2e1"
code_version        = "3f9c2e1"
prometheus_url      = "http://prometheus.mlcp.internal:9090"
