locals {
  # The instance types a node group may launch: one table. Each GPU type gives the CUDA compute
  # capability of its GPU (workloads/training/Dockerfile builds Horovod's kernels for exactly
  # these, HOROVOD_BUILD_CUDA_CC_LIST); every type has a list price in the cost rule
  # (dashboards/rules/infrastructure.yml, mlcp:instance_price_usd_per_hour).
  # tests/contract/test_instance_types.py checks both ways. To add a type, add it here, price it
  # there, and add its compute capability to the Dockerfile if it is new.
  # No p3 (V100, 7.0): the image's torch wheels (cu128, torch >= 2.11) carry no Volta kernels.
  gpu_instance_types = {
    "g4dn.xlarge"  = "7.5" # T4
    "g4dn.2xlarge" = "7.5" # T4
    "g5.xlarge"    = "8.6" # A10G
    "g5.2xlarge"   = "8.6" # A10G
    "g5.12xlarge"  = "8.6" # 4 x A10G
    "g6.xlarge"    = "8.9" # L4
    "g6.2xlarge"   = "8.9" # L4
    "p4d.24xlarge" = "8.0" # 8 x A100
    "p5.48xlarge"  = "9.0" # 8 x H100
  }
  cpu_instance_types = [
    "m5.xlarge", "m5a.xlarge", "m5n.xlarge", "m6i.xlarge",
    "c6i.xlarge", "c6i.2xlarge",
    "r5.large", "r5.xlarge", "r5.2xlarge",
  ]
  allowed_instance_types = concat(keys(local.gpu_instance_types), local.cpu_instance_types)
}
