# Bad input is refused at plan time with a message a person understands.

mock_provider "aws" {
  source = "./tests/mocks"
}

run "node_group_min_above_desired" {
  command = plan
  module {
    source = "../../modules/node_groups"
  }
  variables {
    cluster_name       = "mlcp-test"
    kubernetes_version = "1.31"
    subnet_ids         = ["subnet-a"]
    kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/test"
    node_groups = {
      memory = { instance_types = ["r5.xlarge"], min_size = 3, desired_size = 1, max_size = 4, labels = { "node.kubernetes.io/pool" = "memory" } }
    }
  }
  expect_failures = [var.node_groups]
}

run "node_group_bad_instance_type" {
  command = plan
  module {
    source = "../../modules/node_groups"
  }
  variables {
    cluster_name       = "mlcp-test"
    kubernetes_version = "1.31"
    subnet_ids         = ["subnet-a"]
    kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/test"
    node_groups = {
      memory = { instance_types = ["r5 xlarge"], min_size = 0, desired_size = 1, max_size = 4, labels = { "node.kubernetes.io/pool" = "memory" } }
    }
  }
  expect_failures = [var.node_groups]
}

run "node_group_instance_type_not_in_the_table" {
  command = plan
  module {
    source = "../../modules/node_groups"
  }
  variables {
    cluster_name       = "mlcp-test"
    kubernetes_version = "1.31"
    subnet_ids         = ["subnet-a"]
    kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/test"
    node_groups = {
      gpu = { instance_types = ["p3.2xlarge"], min_size = 0, desired_size = 0, max_size = 1, labels = { "node.kubernetes.io/pool" = "gpu" } }
    }
  }
  expect_failures = [var.node_groups]
}

run "vpc_cidr_not_a_cidr" {
  command = plan
  module {
    source = "../../modules/network"
  }
  variables {
    name               = "mlcp-test"
    cluster_name       = "mlcp-test"
    vpc_cidr           = "10.40.0.0/33"
    availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/test"
  }
  expect_failures = [var.vpc_cidr]
}

run "one_zone_is_not_enough" {
  command = plan
  module {
    source = "../../modules/network"
  }
  variables {
    name               = "mlcp-test"
    cluster_name       = "mlcp-test"
    vpc_cidr           = "10.40.0.0/16"
    availability_zones = ["eu-west-1a"]
    kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/test"
  }
  expect_failures = [var.availability_zones]
}

run "public_api_open_to_the_world" {
  command = plan
  module {
    source = "../../modules/eks"
  }
  variables {
    cluster_name           = "mlcp-test"
    kubernetes_version     = "1.28"
    subnet_ids             = ["subnet-a", "subnet-b"]
    public_access_cidrs    = ["0.0.0.0/0"]
    kms_key_arn            = "arn:aws:kms:eu-west-1:123456789012:key/test"
    control_plane_role_arn = "arn:aws:iam::123456789012:role/x"
  }
  expect_failures = [var.public_access_cidrs, var.kubernetes_version]
}

run "bad_bucket_name" {
  command = plan
  module {
    source = "../../modules/bucket"
  }
  variables {
    name        = "Acme_Data"
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/test"
  }
  expect_failures = [var.name]
}

run "wildcard_action_refused" {
  command = plan
  module {
    source = "../../modules/irsa_role"
  }
  variables {
    name              = "mlcp-test-bad"
    oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/x"
    oidc_issuer       = "oidc.eks.eu-west-1.amazonaws.com/id/X"
    namespace         = "ml-training"
    service_account   = "training"
    policy_json       = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:*\",\"Resource\":\"*\"}]}"
  }
  expect_failures = [var.policy_json]
}
