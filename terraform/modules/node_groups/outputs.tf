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

output "smallest_node" {
  description = "Per node group: the least vCPUs, memory (MiB), GPUs and max pods of any instance type it may launch, and what the DaemonSets on its nodes request (instance_types.json); a pod sized to fit it fits every node of the group. The functions get the training pool's as CONTROL_TRAINING_NODE_CAPACITY."
  value = {
    for name, g in var.node_groups : name => {
      vcpus      = min([for t in g.instance_types : local.instance_specs[t].vcpus]...)
      memory_mib = min([for t in g.instance_types : local.instance_specs[t].memory_mib]...)
      gpus       = min([for t in g.instance_types : lookup(local.instance_specs[t], "gpus", 0)]...)
      max_pods   = min([for t in g.instance_types : local.instance_specs[t].max_pods]...)
      # What the DaemonSets that run on the group's nodes request (instance_types.json, daemonsets).
      daemonset_cpu_millicores = sum(concat([0], [for d in values(local.daemonsets) : d.cpu_millicores if d.pool == null || d.pool == lookup(g.labels, "node.kubernetes.io/pool", "")]))
      daemonset_memory_mib     = sum(concat([0], [for d in values(local.daemonsets) : d.memory_mib if d.pool == null || d.pool == lookup(g.labels, "node.kubernetes.io/pool", "")]))
    }
  }
}
