provider "aws" {
  region = var.region
}

data "terraform_remote_state" "platform" {
  backend = "s3"
  config  = var.platform_state
}

locals {
  platform = data.terraform_remote_state.platform.outputs

  # Prometheus rule groups written beside the dashboards (dashboards/rules/*.yml), given to
  # the mlcp-platform chart as PrometheusRule objects.
  rules_dir   = "${path.module}/../../dashboards/rules"
  rule_groups = flatten([for f in sort(fileset(local.rules_dir, "*.yml")) : yamldecode(file("${local.rules_dir}/${f}")).groups])
}

data "aws_eks_cluster_auth" "this" {
  name = local.platform.eks_cluster_name
}

provider "helm" {
  kubernetes {
    host                   = local.platform.eks_cluster_endpoint
    cluster_ca_certificate = base64decode(local.platform.eks_cluster_certificate_authority)
    token                  = data.aws_eks_cluster_auth.this.token
  }
}

resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = "66.3.1"
  namespace        = "monitoring"
  create_namespace = true

  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        retention                               = var.prometheus_retention
        serviceMonitorSelectorNilUsesHelmValues = false
        podMonitorSelectorNilUsesHelmValues     = false
        ruleSelectorNilUsesHelmValues           = false
      }
      # Reached by the control-plane Lambdas inside the VPC (CONTROL_PROMETHEUS_URL).
      service = {
        type = "LoadBalancer"
        annotations = {
          "service.beta.kubernetes.io/aws-load-balancer-scheme" = "internal"
          "service.beta.kubernetes.io/aws-load-balancer-type"   = "external"
        }
      }
    }
    alertmanager = {
      serviceAccount = {
        name        = "kube-prometheus-stack-alertmanager"
        annotations = { "eks.amazonaws.com/role-arn" = local.platform.irsa_role_arns["alertmanager"] }
      }
      config = {
        route = { receiver = "mlcp-control-plane", group_by = ["alertname", "deployment"] }
        receivers = [{
          name        = "mlcp-control-plane"
          sns_configs = [{ topic_arn = local.platform.alerts_topic_arn, sigv4 = { region = var.region } }]
        }]
      }
    }
  })]

  depends_on = [helm_release.aws_load_balancer_controller]
}

resource "helm_release" "aws_load_balancer_controller" {
  name       = "aws-load-balancer-controller"
  repository = "https://aws.github.io/eks-charts"
  chart      = "aws-load-balancer-controller"
  version    = "1.10.1"
  namespace  = "kube-system"

  values = [yamlencode({
    clusterName = local.platform.eks_cluster_name
    region      = var.region
    vpcId       = local.platform.vpc_id # given, so the controller never needs IMDS (hop limit 1)
    serviceAccount = {
      name        = "aws-load-balancer-controller"
      annotations = { "eks.amazonaws.com/role-arn" = local.platform.irsa_role_arns["load_balancer_controller"] }
    }
  })]
}

resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = "9.43.2"
  namespace  = "kube-system"

  values = [yamlencode({
    awsRegion     = var.region
    autoDiscovery = { clusterName = local.platform.eks_cluster_name }
    rbac = {
      serviceAccount = {
        name        = "cluster-autoscaler"
        annotations = { "eks.amazonaws.com/role-arn" = local.platform.irsa_role_arns["cluster_autoscaler"] }
      }
    }
    extraArgs = {
      balance-similar-node-groups   = true
      expander                      = "least-waste"
      scale-down-unneeded-time      = "10m"
      skip-nodes-with-local-storage = false
    }
  })]
}

resource "helm_release" "nvidia_device_plugin" {
  name       = "nvidia-device-plugin"
  repository = "https://nvidia.github.io/k8s-device-plugin"
  chart      = "nvidia-device-plugin"
  version    = "0.17.0"
  namespace  = "kube-system"

  values = [yamlencode({
    nodeSelector = { "node.kubernetes.io/pool" = "gpu-training" }
    tolerations  = [{ key = "nvidia.com/gpu", operator = "Equal", value = "true", effect = "NoSchedule" }]
  })]
}

resource "helm_release" "dcgm_exporter" {
  name       = "dcgm-exporter"
  repository = "https://nvidia.github.io/dcgm-exporter/helm-charts"
  chart      = "dcgm-exporter"
  version    = "3.6.1"
  namespace  = "monitoring"

  values = [yamlencode({
    nodeSelector   = { "node.kubernetes.io/pool" = "gpu-training" }
    tolerations    = [{ key = "nvidia.com/gpu", operator = "Equal", value = "true", effect = "NoSchedule" }]
    serviceMonitor = { enabled = true }
  })]

  depends_on = [helm_release.kube_prometheus_stack]
}

resource "helm_release" "mpi_operator" {
  name             = "mpi-operator"
  chart            = var.mpi_operator_chart
  namespace        = "mpi-operator"
  create_namespace = true
}

# The platform's own objects: namespaces, service accounts (IRSA), RBAC for the control
# plane's group, NetworkPolicies, the checkpoint volume, monitors and alert rules.
resource "helm_release" "mlcp_platform" {
  name      = "mlcp-platform"
  chart     = "${path.module}/../charts/mlcp-platform"
  namespace = "kube-system"

  values = [yamlencode({
    controlPlaneGroup = local.platform.control_plane_group
    serviceAccounts = {
      training  = { roleArn = local.platform.irsa_role_arns["training"] }
      inference = { roleArn = local.platform.irsa_role_arns["inference"] }
    }
    checkpoints = {
      claimName    = local.platform.checkpoints.claim_name
      volumeHandle = local.platform.checkpoints.volume_handle
    }
    network         = { vpcCidr = local.platform.vpc_cidr }
    prometheusRules = { groups = local.rule_groups }
  })]

  depends_on = [helm_release.kube_prometheus_stack, helm_release.mpi_operator]
}
