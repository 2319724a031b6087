# Terraform CLI configuration for machines with no access to the Terraform registry:
# the AWS provider is installed only from the filesystem mirror, never downloaded.
#   TF_CLI_CONFIG_FILE=$PWD/terraform/terraformrc.offline.hcl terraform init -backend=false
# Override the mirror location with TF_PLUGIN_MIRROR in the tests (see tests/terraform).
provider_installation {
  filesystem_mirror {
    path    = "/opt/tf-plugins"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
}
