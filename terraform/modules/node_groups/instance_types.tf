locals {
  # The instance types a node group may launch: one table, instance_types.json, that the control
  # plane reads too (training right-sizing bounds a worker by its pool's allocatable). Each GPU
  # type gives the CUDA compute capability of its GPU (workloads/training/Dockerfile builds
  # Horovod's kernels for exactly these, HOROVOD_BUILD_CUDA_CC_LIST); every type has a list price
  # in the cost rule (dashboards/rules/infrastructure.yml, mlcp:instance_price_usd_per_hour).
  # tests/contract/test_instance_types.py checks both ways. To add a type, add it to the JSON,
  # price it there, and add its compute capability to the Dockerfile if it is new.
  instance_table         = jsondecode(file("${path.module}/instance_types.json"))
  gpu_instance_types     = { for t, spec in local.instance_table.gpu : t => spec.compute_capability }
  cpu_instance_types     = keys(local.instance_table.cpu)
  instance_specs         = merge(local.instance_table.gpu, local.instance_table.cpu)
  allowed_instance_types = concat(keys(local.gpu_instance_types), local.cpu_instance_types)
  daemonsets             = local.instance_table.daemonsets
}
