terraform {
  # 1.9: the instance-type validation refers to the table in instance_types.tf.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
  }
}
