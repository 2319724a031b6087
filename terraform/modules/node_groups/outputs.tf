output "node_role_arn" {
  description = "IAM role of the nodes."
  value       = aws_iam_role.node.arn
}

output "node_groups" {
  description = "Per node group: capacity type, sizes, labels and taints as EKS holds them."
  value = {
    for k, g in aws_eks_node_group.this : k => {
      capacity_type  = g.capacity_type
      instance_types = g.instance_types
      min_size       = g.scaling_config[0].min_size
      max_size       = g.scaling_config[0].max_size
      labels         = g.labels
      taints         = [for t in g.taint : { key = t.key, value = t.value, effect = t.effect }]
    }
  }
}

output "launch_templates" {
  description = "Launch template ids by node group."
  value       = { for k, lt in aws_launch_template.node : k => lt.id }
}
