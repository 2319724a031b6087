# IRSA: one IAM role per Kubernetes service account, each with only the actions its pods call.
locals {
  elb_tagged = { Null = { "aws:ResourceTag/elbv2.k8s.aws/cluster" = "false" } }

  irsa = {
    training = {
      namespace       = local.training_namespace
      service_account = "training"
      managed         = []
      statements = [
        { Sid = "ReadDatasets", Action = ["s3:GetObject", "s3:GetObjectVersion"], Resource = ["${module.storage.data_bucket.arn}/datasets/*"] },
        { Sid = "WriteRunArtifacts", Action = ["s3:GetObject", "s3:PutObject"], Resource = ["${module.storage.artifacts_bucket.arn}/models/*"] },
        { Sid = "ListStores", Action = ["s3:ListBucket"], Resource = [module.storage.data_bucket.arn, module.storage.artifacts_bucket.arn] },
        { Sid = "UsePlatformKey", Action = ["kms:Decrypt", "kms:GenerateDataKey"], Resource = [module.kms.key_arn] },
      ]
    }
    inference = {
      namespace       = local.serving_namespace
      service_account = "inference"
      managed         = []
      statements = [
        { Sid = "ReadModelArtifacts", Action = ["s3:GetObject", "s3:GetObjectVersion"], Resource = ["${module.storage.artifacts_bucket.arn}/models/*"] },
        { Sid = "DecryptArtifacts", Action = ["kms:Decrypt"], Resource = [module.kms.key_arn] },
      ]
    }
    alertmanager = {
      namespace       = "monitoring"
      service_account = "kube-prometheus-stack-alertmanager"
      managed         = []
      statements = [
        { Sid = "PublishAlerts", Action = ["sns:Publish"], Resource = [module.functions.alerts_topic_arn] },
        { Sid = "EncryptAlerts", Action = ["kms:GenerateDataKey", "kms:Decrypt"], Resource = [module.kms.key_arn] },
      ]
    }
    cluster_autoscaler = {
      namespace       = "kube-system"
      service_account = "cluster-autoscaler"
      managed         = []
      statements = [
        {
          Sid = "Discover"
          Action = [
            "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingInstances",
            "autoscaling:DescribeLaunchConfigurations", "autoscaling:DescribeScalingActivities",
            "autoscaling:DescribeTags", "ec2:DescribeImages", "ec2:DescribeInstanceTypes",
            "ec2:DescribeLaunchTemplateVersions", "ec2:GetInstanceTypesFromInstanceRequirements",
          ]
          Resource = ["*"]
        },
        {
          Sid      = "ReadNodeGroups"
          Action   = ["eks:DescribeNodegroup"]
          Resource = ["arn:${local.partition}:eks:${var.region}:${var.account_id}:nodegroup/${local.name}/*/*"]
        },
        {
          Sid       = "ScaleOwnGroupsOnly"
          Action    = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"]
          Resource  = ["*"]
          Condition = { StringEquals = { "aws:ResourceTag/k8s.io/cluster-autoscaler/${local.name}" = "owned" } }
        },
      ]
    }
    load_balancer_controller = {
      namespace       = "kube-system"
      service_account = "aws-load-balancer-controller"
      managed         = []
      statements = [
        {
          Sid       = "ElbServiceLinkedRole"
          Action    = ["iam:CreateServiceLinkedRole"]
          Resource  = ["*"]
          Condition = { StringEquals = { "iam:AWSServiceName" = "elasticloadbalancing.amazonaws.com" } }
        },
        {
          Sid = "Discover"
          Action = [
            "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
            "ec2:DescribeInternetGateways", "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections",
            "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
            "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:DescribeRouteTables",
            "ec2:GetSecurityGroupsForVpc", "ec2:DescribeIpamPools", "ec2:DescribeCoipPools", "ec2:GetCoipPoolUsage",
            "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
            "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
            "elasticloadbalancing:DescribeSSLPolicies", "elasticloadbalancing:DescribeRules",
            "elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeTargetGroupAttributes",
            "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags",
            "elasticloadbalancing:DescribeTrustStores", "elasticloadbalancing:DescribeListenerAttributes",
            "acm:ListCertificates", "acm:DescribeCertificate", "wafv2:GetWebACL", "wafv2:GetWebACLForResource",
            "shield:GetSubscriptionState", "shield:DescribeProtection",
          ]
          Resource = ["*"]
        },
        {
          Sid      = "ManageSecurityGroupRules"
          Action   = ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"]
          Resource = ["*"]
        },
        {
          Sid       = "CreateSecurityGroups"
          Action    = ["ec2:CreateSecurityGroup"]
          Resource  = ["*"]
          Condition = { StringEquals = { "ec2:Vpc" = "arn:${local.partition}:ec2:${var.region}:${var.account_id}:vpc/${module.network.vpc_id}" } }
        },
        {
          Sid       = "TagOwnSecurityGroups"
          Action    = ["ec2:CreateTags", "ec2:DeleteTags", "ec2:DeleteSecurityGroup"]
          Resource  = ["arn:${local.partition}:ec2:${var.region}:${var.account_id}:security-group/*"]
          Condition = local.elb_tagged
        },
        {
          Sid       = "CreateLoadBalancers"
          Action    = ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"]
          Resource  = ["*"]
          Condition = { Null = { "aws:RequestTag/elbv2.k8s.aws/cluster" = "false" } }
        },
        {
          Sid = "ManageListenersAndRules"
          Action = [
            "elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
            "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule",
          ]
          Resource = ["*"]
        },
        {
          Sid = "ManageOwnLoadBalancers"
          Action = [
            "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags",
            "elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
            "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
            "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyTargetGroup",
            "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
            "elasticloadbalancing:ModifyListenerAttributes",
          ]
          Resource = [
            "arn:${local.partition}:elasticloadbalancing:${var.region}:${var.account_id}:loadbalancer/*",
            "arn:${local.partition}:elasticloadbalancing:${var.region}:${var.account_id}:targetgroup/*/*",
          ]
          Condition = local.elb_tagged
        },
        {
          Sid      = "RegisterTargets"
          Action   = ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"]
          Resource = ["arn:${local.partition}:elasticloadbalancing:${var.region}:${var.account_id}:targetgroup/*/*"]
        },
        {
          Sid = "ManageListenerDetails"
          Action = [
            "elasticloadbalancing:SetWebAcl", "elasticloadbalancing:ModifyListener",
            "elasticloadbalancing:AddListenerCertificates", "elasticloadbalancing:RemoveListenerCertificates",
            "elasticloadbalancing:ModifyRule",
          ]
          Resource = ["*"]
        },
      ]
    }
    ebs_csi = {
      namespace       = "kube-system"
      service_account = "ebs-csi-controller-sa"
      managed         = ["arn:${local.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
      statements = [
        { Sid = "EncryptVolumes", Action = ["kms:Decrypt", "kms:GenerateDataKeyWithoutPlaintext", "kms:CreateGrant", "kms:DescribeKey"], Resource = [module.kms.key_arn] },
      ]
    }
    efs_csi = {
      namespace       = "kube-system"
      service_account = "efs-csi-controller-sa"
      managed         = ["arn:${local.partition}:iam::aws:policy/service-role/AmazonEFSCSIDriverPolicy"]
      statements      = []
    }
    # prometheus-cloudwatch-exporter (terraform/addons): reads exactly what
    # dashboards/cloudwatch_exporter.yml asks for. Neither action can be limited to resources.
    cloudwatch_exporter = {
      namespace       = "monitoring"
      service_account = "prometheus-cloudwatch-exporter"
      managed         = []
      statements = [
        { Sid = "ReadMetrics", Action = ["cloudwatch:GetMetricData", "cloudwatch:ListMetrics"], Resource = ["*"] },
      ]
    }
  }

  irsa_policies = {
    for k, r in local.irsa : k => length(r.statements) == 0 ? null : jsonencode({
      Version   = "2012-10-17"
      Statement = [for s in r.statements : merge({ Effect = "Allow" }, s)]
    })
  }
}

module "irsa" {
  source   = "../../modules/irsa_role"
  for_each = local.irsa

  name                = "${local.name}-${replace(each.key, "_", "-")}"
  oidc_provider_arn   = module.eks.oidc_provider_arn
  oidc_issuer         = module.eks.oidc_issuer
  namespace           = each.value.namespace
  service_account     = each.value.service_account
  policy_json         = local.irsa_policies[each.key]
  managed_policy_arns = each.value.managed
}
