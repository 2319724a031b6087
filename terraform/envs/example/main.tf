data "aws_partition" "current" {}

locals {
  name      = "mlcp-${var.environment}"
  partition = data.aws_partition.current.partition

  training_namespace = "ml-training"
  training_pool      = "gpu-training" # the node group the MPIJob's workers select (control/manifests/config.py gpu_pool)
  serving_namespace  = "ml-serving"

  # The functions need the state machine ARNs and the state machines need the functions'
  # ARNs: the state machine ARNs are derived from their names here (the `check` below proves
  # they match what AWS returns), the functions' ARNs are real resource attributes.
  training_state_machine_name = "${local.name}-training-pipeline"
  rollout_state_machine_name  = "${local.name}-rollout"
  state_machine_arn_prefix    = "arn:${local.partition}:states:${var.region}:${var.account_id}:stateMachine:"
  training_state_machine_arn  = "${local.state_machine_arn_prefix}${local.training_state_machine_name}"
  rollout_state_machine_arn   = "${local.state_machine_arn_prefix}${local.rollout_state_machine_name}"

  statemachines_dir = coalesce(var.statemachines_dir, "${path.module}/../../../statemachines")

  # docs/contracts.md, "Settings". The dead-letter queue URL, the alert-token secret ARN, the
  # API auth mode (iam) and the Ingress settings are added by modules/functions, which owns them.
  control_settings = {
    CONTROL_REGION                     = var.region
    CONTROL_DATA_BUCKET                = module.storage.data_bucket.id
    CONTROL_ARTIFACTS_BUCKET           = module.storage.artifacts_bucket.id
    CONTROL_REGISTRY_TABLE             = module.registry.table_name
    CONTROL_TRAINING_STATE_MACHINE_ARN = local.training_state_machine_arn
    CONTROL_ROLLOUT_STATE_MACHINE_ARN  = local.rollout_state_machine_arn
    CONTROL_CLUSTER                    = "eks"
    CONTROL_EKS_CLUSTER_NAME           = module.eks.cluster_name
    CONTROL_TRAINING_NAMESPACE         = local.training_namespace
    CONTROL_SERVING_NAMESPACE          = local.serving_namespace
    CONTROL_TRAINING_SERVICE_ACCOUNT   = "training"
    CONTROL_INFERENCE_SERVICE_ACCOUNT  = "inference"
    CONTROL_TRAINING_IMAGE             = local.images["training"]
    CONTROL_INFERENCE_IMAGE            = local.images["inference"]
    CONTROL_CHECKPOINT_CLAIM           = "training-checkpoints"
    CONTROL_PROMETHEUS_URL             = var.prometheus_url
    CONTROL_CODE_VERSION               = var.code_version
    CONTROL_VPC_CIDR                   = module.network.vpc_cidr
    # Training right-sizing never recommends more than a node of the training pool can give.
    CONTROL_TRAINING_NODE_CAPACITY = jsonencode(module.node_groups.smallest_node[local.training_pool])
  }
}

module "kms" {
  source = "../../modules/kms"

  name                  = "${local.name}-platform"
  description           = "mlcp ${var.environment}: data, artifacts, registry, checkpoints, node volumes, logs, queues, secrets"
  account_id            = var.account_id
  region                = var.region
  partition             = local.partition
  allow_autoscaling_ebs = true
}

module "network" {
  source = "../../modules/network"

  name                   = local.name
  cluster_name           = local.name
  vpc_cidr               = var.vpc_cidr
  availability_zones     = var.availability_zones
  one_nat_gateway_per_az = var.one_nat_gateway_per_az
  kms_key_arn            = module.kms.key_arn
  log_retention_days     = var.log_retention_days
}

module "storage" {
  source = "../../modules/storage"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  name                         = local.name
  bucket_prefix                = var.bucket_prefix
  account_id                   = var.account_id
  kms_key_arn                  = module.kms.key_arn
  replication_region           = var.replication_region
  vpc_id                       = module.network.vpc_id
  subnet_ids                   = module.network.private_subnet_ids
  nfs_client_security_group_id = module.eks.cluster_security_group_id
  force_destroy                = var.force_destroy
}

module "registry" {
  source = "../../modules/registry"

  table_name          = "${local.name}-registry"
  kms_key_arn         = module.kms.key_arn
  deletion_protection = !var.force_destroy
  replica_region      = var.replication_region
  replica_kms_key_arn = module.storage.replica_kms_key_arn
}

module "images" {
  source = "../../modules/images"

  name        = local.name
  kms_key_arn = module.kms.key_arn
}

module "eks" {
  source = "../../modules/eks"

  cluster_name           = local.name
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = module.network.private_subnet_ids
  public_access_cidrs    = var.cluster_public_access_cidrs
  kms_key_arn            = module.kms.key_arn
  log_retention_days     = var.log_retention_days
  admin_role_arns        = var.cluster_admin_role_arns
  control_plane_role_arn = module.functions.role_arn
}

module "node_groups" {
  source = "../../modules/node_groups"

  cluster_name       = module.eks.cluster_name
  kubernetes_version = var.kubernetes_version
  subnet_ids         = module.network.private_subnet_ids
  kms_key_arn        = module.kms.key_arn
  node_groups        = var.node_groups
}

module "eks_addons" {
  source = "../../modules/eks_addons"

  cluster_name = module.eks.cluster_name
  addons = {
    coredns            = {}
    aws-ebs-csi-driver = { service_account_role_arn = module.irsa["ebs_csi"].role_arn }
    aws-efs-csi-driver = { service_account_role_arn = module.irsa["efs_csi"].role_arn }
  }

  depends_on = [module.node_groups]
}

module "functions" {
  source = "../../modules/functions"

  name_prefix            = local.name
  account_id             = var.account_id
  package_path           = var.lambda_package_path
  environment            = local.control_settings
  ingress                = { scheme = var.ingress_scheme, certificate_arn = var.ingress_certificate_arn }
  vpc_id                 = module.network.vpc_id
  vpc_cidr               = module.network.vpc_cidr
  subnet_ids             = module.network.private_subnet_ids
  kms_key_arn            = module.kms.key_arn
  data_bucket            = module.storage.data_bucket
  artifacts_bucket_arn   = module.storage.artifacts_bucket.arn
  registry_table_arn     = module.registry.table_arn
  checkpoint_file_system = module.storage.checkpoint_file_system
  cluster_arn            = "arn:${local.partition}:eks:${var.region}:${var.account_id}:cluster/${local.name}"
  state_machine_arns     = [local.training_state_machine_arn, local.rollout_state_machine_arn]
  log_retention_days     = var.log_retention_days
}

module "pipelines" {
  source = "../../modules/pipelines"

  name_prefix                 = local.name
  training_state_machine_name = local.training_state_machine_name
  rollout_state_machine_name  = local.rollout_state_machine_name
  definitions_dir             = local.statemachines_dir
  function_arns               = module.functions.function_arns
  kms_key_arn                 = module.kms.key_arn
  log_retention_days          = var.log_retention_days
}

# The functions reach the private EKS API and Prometheus (pods on the nodes).
resource "aws_vpc_security_group_ingress_rule" "cluster_api_from_functions" {
  security_group_id            = module.eks.cluster_security_group_id
  description                  = "EKS API from the control-plane Lambdas"
  referenced_security_group_id = module.functions.security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

resource "aws_vpc_security_group_ingress_rule" "prometheus_from_functions" {
  security_group_id            = module.eks.cluster_security_group_id
  description                  = "Prometheus HTTP API from the control-plane Lambdas"
  referenced_security_group_id = module.functions.security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 9090
  to_port                      = 9090
}

# stage_dataset writes the staged datasets onto the checkpoint file system.
resource "aws_vpc_security_group_ingress_rule" "efs_from_functions" {
  security_group_id            = module.storage.checkpoint_file_system.security_group_id
  description                  = "NFS from the staging Lambda"
  referenced_security_group_id = module.functions.security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
}

check "state_machine_arns_agree" {
  assert {
    condition     = module.pipelines.training_state_machine_arn == local.training_state_machine_arn && module.pipelines.rollout_state_machine_arn == local.rollout_state_machine_arn
    error_message = "The state machine ARNs given to the functions differ from the ones AWS returned; the functions would start the wrong pipeline."
  }
}

# The pipeline pushes each image and passes its digest: the functions (and every manifest they
# render) then name the exact image, repo@sha256:..., not a tag.
locals {
  images = {
    for name in ["training", "inference"] : name => (
      lookup(var.image_digests, name, null) == null
      ? "${module.images.repository_urls[name]}:${var.image_tag}"
      : "${module.images.repository_urls[name]}@${var.image_digests[name]}"
    )
  }
}
