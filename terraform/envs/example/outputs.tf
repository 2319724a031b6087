output "control_settings" {
  description = "Every CONTROL_* setting the functions get (docs/contracts.md), for the runbook and the local mirror of AWS."
  value       = module.functions.environment
  sensitive   = true
}

output "data_bucket" {
  description = "CONTROL_DATA_BUCKET: datasets go under datasets/<model>/<dataset-version>/."
  value       = module.storage.data_bucket.id
}

output "artifacts_bucket" {
  description = "CONTROL_ARTIFACTS_BUCKET."
  value       = module.storage.artifacts_bucket.id
}

output "registry_table" {
  description = "CONTROL_REGISTRY_TABLE."
  value       = module.registry.table_name
}

output "training_state_machine_arn" {
  description = "CONTROL_TRAINING_STATE_MACHINE_ARN."
  value       = module.pipelines.training_state_machine_arn
}

output "rollout_state_machine_arn" {
  description = "CONTROL_ROLLOUT_STATE_MACHINE_ARN."
  value       = module.pipelines.rollout_state_machine_arn
}

output "dead_letter_queue_url" {
  description = "CONTROL_DEAD_LETTER_QUEUE_URL."
  value       = module.functions.dead_letter_queue_url
}

output "alert_token_secret_arn" {
  description = "CONTROL_ALERT_TOKEN_SECRET_ARN (set its value out of band)."
  value       = module.functions.alert_token_secret_arn
}

output "alerts_topic_arn" {
  description = "SNS topic for Alertmanager's sns_configs."
  value       = module.functions.alerts_topic_arn
}

output "api_url" {
  description = "Base URL of the control-plane REST API."
  value       = module.functions.api_url
}

output "api_callers_policy_arn" {
  description = "Attach to the IAM roles or groups that use the API (the CLI signs with SigV4)."
  value       = module.functions.api_callers_policy_arn
}

output "function_names" {
  description = "Lambda function names by contract name."
  value       = module.functions.function_names
}

output "eks_cluster_name" {
  description = "CONTROL_EKS_CLUSTER_NAME."
  value       = module.eks.cluster_name
}

output "eks_cluster_endpoint" {
  description = "EKS API endpoint (for the addons root's providers)."
  value       = module.eks.cluster_endpoint
}

output "eks_cluster_certificate_authority" {
  description = "EKS API CA bundle, base64."
  value       = module.eks.cluster_certificate_authority
}

output "control_plane_group" {
  description = "Kubernetes group the functions' role is mapped to (bound by the mlcp-platform chart)."
  value       = module.eks.control_plane_group
}

output "node_groups" {
  description = "Node groups with capacity type, sizes, labels and taints."
  value       = module.node_groups.node_groups
}

output "irsa_role_arns" {
  description = "IRSA role ARN by service account role (training, inference, alertmanager, cluster_autoscaler, load_balancer_controller, ebs_csi, efs_csi, cloudwatch_exporter)."
  value       = { for k, m in module.irsa : k => m.role_arn }
}

output "training_image_repository" {
  description = "ECR repository of the training image (CONTROL_TRAINING_IMAGE without the tag)."
  value       = module.images.repository_urls["training"]
}

output "inference_image_repository" {
  description = "ECR repository of the inference image (CONTROL_INFERENCE_IMAGE without the tag)."
  value       = module.images.repository_urls["inference"]
}

output "checkpoints" {
  description = "EFS file system and access point behind the training-checkpoints claim (volumeHandle <fs>::<ap>)."
  value = {
    claim_name      = "training-checkpoints"
    file_system_id  = module.storage.efs_file_system_id
    access_point_id = module.storage.efs_access_point_id
    volume_handle   = "${module.storage.efs_file_system_id}::${module.storage.efs_access_point_id}"
  }
}

output "vpc_id" {
  description = "VPC of the platform."
  value       = module.network.vpc_id
}

output "vpc_cidr" {
  description = "IPv4 range of the VPC (the mlcp-platform chart's NetworkPolicies: EFS and interface endpoints)."
  value       = module.network.vpc_cidr
}

output "region" {
  description = "CONTROL_REGION."
  value       = var.region
}

output "iam_policy_documents" {
  description = "Every IAM policy written by hand in this platform, as JSON by name (audits and tests: no '*' action)."
  value = merge(
    { functions = module.functions.policy_json, state_machines = module.pipelines.policy_json, kms_key = module.kms.policy },
    { for k, p in local.irsa_policies : "irsa_${k}" => p if p != null },
  )
}

output "state_machine_definitions" {
  description = "The state machine definitions as deployed, with every ARN placeholder filled."
  value       = { training = module.pipelines.training_definition, rollout = module.pipelines.rollout_definition }
}
