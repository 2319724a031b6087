# Each module on its own, planned against the mocked provider (values known at plan).
# Run from terraform/envs/example with `terraform test` (see platform.tftest.hcl).

mock_provider "aws" {
  source          = "./tests/mocks"
  override_during = plan
}

mock_provider "aws" {
  alias           = "replica"
  source          = "./tests/mocks"
  override_during = plan
}

# --- one run per module, against the module's own resources -----------------------------

run "buckets_are_private_encrypted_and_tls_only" {
  command = plan
  module {
    source = "../../modules/bucket"
  }
  variables {
    name        = "acme-mlcp-test-data"
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/test"
    access_logs = { bucket = "acme-mlcp-test-logs" }
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "aws:kms"
    error_message = "Buckets use SSE-KMS."
  }
  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).kms_master_key_id == var.kms_key_arn
    error_message = "Buckets use the platform's customer managed key."
  }
  assert {
    condition = (aws_s3_bucket_public_access_block.this.block_public_acls && aws_s3_bucket_public_access_block.this.block_public_policy
    && aws_s3_bucket_public_access_block.this.ignore_public_acls && aws_s3_bucket_public_access_block.this.restrict_public_buckets)
    error_message = "Every public access block switch is on."
  }
  assert {
    condition = anytrue([
      for s in jsondecode(aws_s3_bucket_policy.this.policy).Statement :
      s.Effect == "Deny" && try(s.Condition.Bool["aws:SecureTransport"], "") == "false"
    ])
    error_message = "The bucket policy denies requests without TLS."
  }
  assert {
    condition     = one(aws_s3_bucket_versioning.this.versioning_configuration).status == "Enabled"
    error_message = "Buckets are versioned."
  }
  assert {
    condition     = length(aws_s3_bucket_logging.this) == 1
    error_message = "Buckets send server access logs to the log bucket."
  }
}

run "access_log_bucket_uses_sse_s3_and_stays_private" {
  command = plan
  module {
    source = "../../modules/bucket"
  }
  variables {
    name                              = "acme-mlcp-test-logs"
    kms_key_arn                       = "arn:aws:kms:eu-west-1:123456789012:key/test"
    receives_access_logs_from_account = "123456789012"
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.this.rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "The access-log bucket is encrypted with SSE-S3 (S3 server access logging cannot write to SSE-KMS)."
  }
  assert {
    condition     = aws_s3_bucket_public_access_block.this.block_public_policy && aws_s3_bucket_public_access_block.this.restrict_public_buckets
    error_message = "The log bucket is private too."
  }
}

run "node_groups_imdsv2_encrypted_volumes_taints" {
  command = plan
  module {
    source = "../../modules/node_groups"
  }
  variables {
    cluster_name       = "mlcp-test"
    kubernetes_version = "1.31"
    subnet_ids         = ["subnet-a", "subnet-b"]
    kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/test"
    node_groups = {
      gpu-training = {
        instance_types = ["g5.2xlarge"]
        min_size       = 0
        desired_size   = 0
        max_size       = 2
        labels         = { "node.kubernetes.io/pool" = "gpu-training" }
        taints         = [{ key = "nvidia.com/gpu", value = "true", effect = "NO_SCHEDULE" }]
      }
      cpu-inference = {
        instance_types = ["m5.xlarge", "m5a.xlarge"]
        capacity_type  = "SPOT"
        min_size       = 1
        desired_size   = 1
        max_size       = 3
        labels         = { "node.kubernetes.io/pool" = "cpu-inference" }
      }
    }
  }

  assert {
    condition     = alltrue([for lt in aws_launch_template.node : one(lt.metadata_options).http_tokens == "required" && one(lt.metadata_options).http_put_response_hop_limit == 1])
    error_message = "Every launch template requires IMDSv2 and keeps pods away from node credentials."
  }
  assert {
    condition     = alltrue([for lt in aws_launch_template.node : alltrue([for b in lt.block_device_mappings : one(b.ebs).encrypted == "true" && one(b.ebs).kms_key_id == var.kms_key_arn])])
    error_message = "Every node volume is encrypted with the platform key."
  }
  assert {
    condition     = one(aws_eks_node_group.this["gpu-training"].taint).key == "nvidia.com/gpu" && one(aws_eks_node_group.this["gpu-training"].taint).effect == "NO_SCHEDULE"
    error_message = "The GPU node group is tainted."
  }
  assert {
    condition     = one(aws_eks_node_group.this["gpu-training"].scaling_config).min_size == 0
    error_message = "The GPU node group scales to zero."
  }
  assert {
    condition     = aws_eks_node_group.this["cpu-inference"].capacity_type == "SPOT"
    error_message = "The inference node group uses SPOT."
  }
  assert {
    condition     = aws_autoscaling_group_tag.node_template["gpu-training|k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu"].tag[0].value == "true:NoSchedule"
    error_message = "cluster-autoscaler learns the GPU taint from the ASG tags, to scale up from zero."
  }
}

run "registry_table_shape_pitr_kms" {
  command = plan
  module {
    source = "../../modules/registry"
  }
  variables {
    table_name  = "mlcp-test-registry"
    kms_key_arn = "arn:aws:kms:eu-west-1:123456789012:key/test"
  }

  assert {
    condition     = aws_dynamodb_table.registry.hash_key == "pk" && aws_dynamodb_table.registry.range_key == "sk"
    error_message = "The registry's keys are pk/sk."
  }
  assert {
    condition     = anytrue([for g in aws_dynamodb_table.registry.global_secondary_index : g.name == "gsi1" && g.hash_key == "gsi1pk" && g.range_key == "gsi1sk"])
    error_message = "The registry has index gsi1 on gsi1pk/gsi1sk."
  }
  assert {
    condition     = one(aws_dynamodb_table.registry.point_in_time_recovery).enabled && one(aws_dynamodb_table.registry.server_side_encryption).enabled && one(aws_dynamodb_table.registry.server_side_encryption).kms_key_arn == var.kms_key_arn
    error_message = "The registry has point-in-time recovery and KMS encryption."
  }
}

run "registry_replica_in_the_dr_region" {
  command = plan
  module {
    source = "../../modules/registry"
  }
  variables {
    table_name          = "mlcp-test-registry"
    kms_key_arn         = "arn:aws:kms:eu-west-1:123456789012:key/test"
    replica_region      = "eu-central-1"
    replica_kms_key_arn = "arn:aws:kms:eu-central-1:123456789012:key/replica"
  }

  assert {
    condition     = aws_dynamodb_table.registry.stream_enabled && aws_dynamodb_table.registry.stream_view_type == "NEW_AND_OLD_IMAGES"
    error_message = "A global table needs its stream (new and old images)."
  }
  assert {
    condition     = length([for r in aws_dynamodb_table.registry.replica : r if r.region_name == "eu-central-1" && r.point_in_time_recovery && r.kms_key_arn == var.replica_kms_key_arn]) == 1
    error_message = "The registry has one replica in the DR region, with PITR and its own KMS key."
  }
}

run "registry_replica_needs_a_key" {
  command = plan
  module {
    source = "../../modules/registry"
  }
  variables {
    table_name     = "mlcp-test-registry"
    kms_key_arn    = "arn:aws:kms:eu-west-1:123456789012:key/test"
    replica_region = "eu-central-1"
  }
  expect_failures = [var.replica_kms_key_arn]
}

run "storage_efs_and_replication" {
  command = plan
  module {
    source = "../../modules/storage"
  }
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }
  variables {
    name                         = "mlcp-test"
    bucket_prefix                = "acme-mlcp-test"
    account_id                   = "123456789012"
    kms_key_arn                  = "arn:aws:kms:eu-west-1:123456789012:key/test"
    replication_region           = "eu-central-1"
    vpc_id                       = "vpc-1"
    subnet_ids                   = ["subnet-a", "subnet-b", "subnet-c"]
    nfs_client_security_group_id = "sg-nodes"
  }

  assert {
    condition     = aws_efs_file_system.checkpoints.encrypted && aws_efs_file_system.checkpoints.kms_key_id == var.kms_key_arn
    error_message = "The checkpoint file system is encrypted with the platform key."
  }
  assert {
    condition     = length(aws_efs_mount_target.checkpoints) == 3
    error_message = "One mount target per zone."
  }
  assert {
    condition     = one(aws_efs_access_point.checkpoints.root_directory).path == "/checkpoints"
    error_message = "Checkpoints live under /checkpoints on the access point."
  }
  assert {
    condition     = length(aws_s3_bucket_replication_configuration.artifacts) == 1 && aws_kms_key.replica[0].enable_key_rotation
    error_message = "Artifacts replicate to the DR region, encrypted with a rotated key there."
  }
}

run "storage_replicates_datasets_and_checkpoints_to_the_dr_region" {
  command = plan
  module {
    source = "../../modules/storage"
  }
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }
  variables {
    name                         = "mlcp-test"
    bucket_prefix                = "acme-mlcp-test"
    account_id                   = "123456789012"
    kms_key_arn                  = "arn:aws:kms:eu-west-1:123456789012:key/test"
    replication_region           = "eu-central-1"
    vpc_id                       = "vpc-1"
    subnet_ids                   = ["subnet-a", "subnet-b", "subnet-c"]
    nfs_client_security_group_id = "sg-nodes"
  }
  # Distinct bucket ARNs, so the replication role's policy can be checked bucket by bucket.
  override_resource {
    target          = module.data_bucket.aws_s3_bucket.this
    override_during = plan
    values          = { arn = "arn:aws:s3:::acme-mlcp-test-data" }
  }
  override_resource {
    target          = module.artifacts_bucket.aws_s3_bucket.this
    override_during = plan
    values          = { arn = "arn:aws:s3:::acme-mlcp-test-artifacts" }
  }
  override_resource {
    target          = module.data_replica[0].aws_s3_bucket.this
    override_during = plan
    values          = { arn = "arn:aws:s3:::acme-mlcp-test-data-eu-central-1" }
  }
  override_resource {
    target          = module.artifacts_replica[0].aws_s3_bucket.this
    override_during = plan
    values          = { arn = "arn:aws:s3:::acme-mlcp-test-artifacts-eu-central-1" }
  }
  override_resource {
    target          = aws_kms_key.replica[0]
    override_during = plan
    values          = { arn = "arn:aws:kms:eu-central-1:123456789012:key/replica" }
  }

  assert {
    condition = (
      length(aws_s3_bucket_replication_configuration.data) == 1
      && one(aws_s3_bucket_replication_configuration.data[0].rule).status == "Enabled"
      && one(one(aws_s3_bucket_replication_configuration.data[0].rule).filter).prefix == "datasets/"
      && one(one(aws_s3_bucket_replication_configuration.data[0].rule).delete_marker_replication).status == "Enabled"
      && one(one(aws_s3_bucket_replication_configuration.data[0].rule).destination).bucket == "arn:aws:s3:::acme-mlcp-test-data-eu-central-1"
      && one(one(one(aws_s3_bucket_replication_configuration.data[0].rule).destination).encryption_configuration).replica_kms_key_id == aws_kms_key.replica[0].arn
    )
    error_message = "The data bucket's datasets/ replicate (delete markers too) to the replica bucket in the DR region, under the replica key."
  }
  assert {
    condition     = output.data_replica_bucket != null
    error_message = "The module reports the datasets replica bucket."
  }
  assert {
    condition = (
      length(aws_efs_replication_configuration.checkpoints) == 1
      && aws_efs_replication_configuration.checkpoints[0].source_file_system_id == aws_efs_file_system.checkpoints.id
      && one(aws_efs_replication_configuration.checkpoints[0].destination).region == "eu-central-1"
      && one(aws_efs_replication_configuration.checkpoints[0].destination).kms_key_id == aws_kms_key.replica[0].arn
    )
    error_message = "The checkpoint file system (staged datasets, checkpoints) replicates to the DR region under the replica key."
  }
  assert {
    condition = (
      toset(flatten([for s in jsondecode(aws_iam_role_policy.replication[0].policy).Statement : s.Resource if s.Sid == "ReadSourceVersions"]))
      == toset(["arn:aws:s3:::acme-mlcp-test-artifacts/*", "arn:aws:s3:::acme-mlcp-test-data/datasets/*"])
      && toset(flatten([for s in jsondecode(aws_iam_role_policy.replication[0].policy).Statement : s.Resource if s.Sid == "WriteReplica"]))
      == toset(["arn:aws:s3:::acme-mlcp-test-artifacts-eu-central-1/*", "arn:aws:s3:::acme-mlcp-test-data-eu-central-1/datasets/*"])
      && toset(flatten([for s in jsondecode(aws_iam_role_policy.replication[0].policy).Statement : s.Resource if s.Sid == "ReadSource"]))
      == toset(["arn:aws:s3:::acme-mlcp-test-artifacts", "arn:aws:s3:::acme-mlcp-test-data"])
    )
    error_message = "The replication role reads only the replicated sources (artifacts, data's datasets/) and writes only to their replicas."
  }
}

run "storage_without_a_dr_region_replicates_nothing" {
  command = plan
  module {
    source = "../../modules/storage"
  }
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }
  variables {
    name                         = "mlcp-test"
    bucket_prefix                = "acme-mlcp-test"
    account_id                   = "123456789012"
    kms_key_arn                  = "arn:aws:kms:eu-west-1:123456789012:key/test"
    replication_region           = null
    vpc_id                       = "vpc-1"
    subnet_ids                   = ["subnet-a", "subnet-b", "subnet-c"]
    nfs_client_security_group_id = "sg-nodes"
  }

  assert {
    condition = (
      length(aws_s3_bucket_replication_configuration.data) == 0 && length(aws_s3_bucket_replication_configuration.artifacts) == 0
      && length(aws_efs_replication_configuration.checkpoints) == 0 && length(aws_kms_key.replica) == 0
      && output.data_replica_bucket == null && output.efs_replica_file_system_id == null
    )
    error_message = "Without replication_region nothing is replicated and no DR-region resource is created."
  }
}

run "functions_wiring" {
  command = plan
  module {
    source = "../../modules/functions"
  }
  variables {
    name_prefix          = "mlcp-test"
    account_id           = "123456789012"
    package_path         = "../../../tests/terraform/fixtures/lambda.zip"
    environment          = { CONTROL_REGION = "eu-west-1" }
    vpc_id               = "vpc-1"
    vpc_cidr             = "10.40.0.0/16"
    subnet_ids           = ["subnet-a", "subnet-b"]
    kms_key_arn          = "arn:aws:kms:eu-west-1:123456789012:key/test"
    data_bucket          = { id = "acme-mlcp-test-data", arn = "arn:aws:s3:::acme-mlcp-test-data" }
    artifacts_bucket_arn = "arn:aws:s3:::acme-mlcp-test-artifacts"
    registry_table_arn   = "arn:aws:dynamodb:eu-west-1:123456789012:table/mlcp-test-registry"
    cluster_arn          = "arn:aws:eks:eu-west-1:123456789012:cluster/mlcp-test"
    state_machine_arns   = ["arn:aws:states:eu-west-1:123456789012:stateMachine:mlcp-test-training-pipeline"]
    checkpoint_file_system = {
      access_point_arn  = "arn:aws:elasticfilesystem:eu-west-1:123456789012:access-point/fsap-0123456789abcdef0"
      file_system_arn   = "arn:aws:elasticfilesystem:eu-west-1:123456789012:file-system/fs-0123456789abcdef0"
      security_group_id = "sg-efs"
    }
  }

  assert {
    condition     = one(aws_lambda_function.this["stage_dataset"].file_system_config).local_mount_path == "/mnt/checkpoints" && length(aws_lambda_function.this["api_handler"].file_system_config) == 1 && length(aws_lambda_function.this["validate_dataset"].file_system_config) == 0
    error_message = "Only stage_dataset and the API (retention) mount the checkpoint file system, at /mnt/checkpoints like the training pods."
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.this : f.runtime == "python3.11" && f.kms_key_arn == var.kms_key_arn && one(f.tracing_config).mode == "Active" && length(one(f.vpc_config).subnet_ids) == 2])
    error_message = "Every function: Python 3.11, KMS-encrypted environment, X-Ray, in the VPC."
  }
  assert {
    condition     = aws_lambda_function.this["api_handler"].handler == "app.app" && aws_lambda_function.this["on_dataset_uploaded"].handler == "app.on_dataset_uploaded" && aws_lambda_function.this["reconcile_rollout"].handler == "app.reconcile_rollout"
    error_message = "Handlers follow the Chalice app (docs/contracts.md)."
  }
  assert {
    condition     = one(one(aws_lambda_function_event_invoke_config.on_dataset_uploaded.destination_config).on_failure).destination == aws_sqs_queue.dead_letter.arn
    error_message = "S3 events the dataset handler cannot process go to the dead-letter queue."
  }
  assert {
    condition     = one(aws_s3_bucket_notification.datasets.lambda_function).filter_prefix == "datasets/"
    error_message = "Only objects under datasets/ notify the dataset handler."
  }
  assert {
    condition     = aws_sqs_queue.dead_letter.kms_master_key_id == var.kms_key_arn && aws_sns_topic.alerts.kms_master_key_id == var.kms_key_arn && aws_secretsmanager_secret.alert_token.kms_key_id == var.kms_key_arn
    error_message = "Queue, topic and secret are encrypted with the platform key."
  }
  assert {
    condition     = alltrue([for g in aws_cloudwatch_log_group.function : g.kms_key_id == var.kms_key_arn]) && aws_cloudwatch_log_group.api_access.kms_key_id == var.kms_key_arn
    error_message = "Function and API logs are encrypted."
  }
  assert {
    condition     = aws_sns_topic_subscription.alerts.endpoint == aws_lambda_function.this["on_alert_notification"].arn
    error_message = "The alert topic feeds on_alert_notification."
  }
}

run "cluster_private_encrypted_logged" {
  command = plan
  module {
    source = "../../modules/eks"
  }
  variables {
    cluster_name           = "mlcp-test"
    kubernetes_version     = "1.31"
    subnet_ids             = ["subnet-a", "subnet-b"]
    kms_key_arn            = "arn:aws:kms:eu-west-1:123456789012:key/test"
    control_plane_role_arn = "arn:aws:iam::123456789012:role/mlcp-test-functions"
  }

  assert {
    condition     = one(aws_eks_cluster.this.vpc_config).endpoint_private_access && !one(aws_eks_cluster.this.vpc_config).endpoint_public_access
    error_message = "With no public CIDRs the API endpoint is private only."
  }
  assert {
    condition     = one(one(aws_eks_cluster.this.encryption_config).provider).key_arn == var.kms_key_arn && length(aws_eks_cluster.this.enabled_cluster_log_types) == 5
    error_message = "Secrets are envelope-encrypted and every control-plane log is on."
  }
  assert {
    condition     = aws_eks_access_entry.control_plane.kubernetes_groups == toset(["mlcp:control-plane"])
    error_message = "The functions' role maps to the narrow mlcp:control-plane group only."
  }
  assert {
    condition     = aws_cloudwatch_log_group.cluster.kms_key_id == var.kms_key_arn
    error_message = "Control-plane logs are encrypted."
  }
}

