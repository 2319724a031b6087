# Offline tests of the example environment and its modules against the real AWS provider
# schema, with a mocked provider (no AWS account). Run from terraform/envs/example:
#   terraform test -var statemachines_dir=<folder with both *.asl.json>
# (tests/terraform/test_terraform.py does this, falling back to placeholder definitions).

mock_provider "aws" {
  source = "./tests/mocks"
}

mock_provider "aws" {
  alias  = "replica"
  source = "./tests/mocks"
}

override_resource {
  target = module.functions.aws_lambda_function.this["validate_dataset"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:mlcp-test-validate_dataset" }
}

override_resource {
  target = module.functions.aws_lambda_function.this["launch_training"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:mlcp-test-launch_training" }
}

override_resource {
  target = module.functions.aws_lambda_function.this["check_training"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:mlcp-test-check_training" }
}

override_resource {
  target = module.functions.aws_lambda_function.this["evaluate_model"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:mlcp-test-evaluate_model" }
}

override_resource {
  target = module.functions.aws_lambda_function.this["register_model"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:mlcp-test-register_model" }
}

override_resource {
  target = module.functions.aws_lambda_function.this["record_run_failure"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:mlcp-test-record_run_failure" }
}

override_resource {
  target = module.functions.aws_lambda_function.this["start_rollout"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:mlcp-test-start_rollout" }
}

override_resource {
  target = module.functions.aws_lambda_function.this["reconcile_rollout"]
  values = { arn = "arn:aws:lambda:eu-west-1:123456789012:function:mlcp-test-reconcile_rollout" }
}

# What AWS would return for the state machines, so the check that the functions were given
# the same ARNs (root main.tf) is exercised.
override_resource {
  target = module.pipelines.aws_sfn_state_machine.training
  values = { arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:mlcp-test-training-pipeline" }
}

override_resource {
  target = module.pipelines.aws_sfn_state_machine.rollout
  values = { arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:mlcp-test-rollout" }
}


variables {
  environment         = "test"
  region              = "eu-west-1"
  account_id          = "123456789012"
  availability_zones  = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
  bucket_prefix       = "acme-mlcp-test"
  replication_region  = "eu-central-1"
  lambda_package_path = "../../../tests/terraform/fixtures/lambda.zip"
  image_tag           = "abc1234"
  code_version        = "abc1234"
  prometheus_url      = "http://prometheus.mlcp.internal:9090"
}

run "platform" {
  # apply (against the mocks) so every ARN is known and the policies can be read.
  command = apply

  # --- node pools -------------------------------------------------------------------------
  assert {
    condition = anytrue([
      for t in output.node_groups["gpu-training"].taints :
      t.key == "nvidia.com/gpu" && t.value == "true" && t.effect == "NO_SCHEDULE"
    ])
    error_message = "The GPU pool must carry the taint nvidia.com/gpu=true:NoSchedule."
  }
  assert {
    condition     = output.node_groups["gpu-training"].min_size == 0
    error_message = "The GPU pool must scale to zero (min size 0)."
  }
  assert {
    condition     = output.node_groups["gpu-training"].labels["node.kubernetes.io/pool"] == "gpu-training"
    error_message = "The MPIJob selects node.kubernetes.io/pool=gpu-training."
  }
  assert {
    condition     = alltrue([for t in output.node_groups["gpu-training"].instance_types : startswith(t, "g5.")])
    error_message = "The GPU pool uses the g5 family (A10G, sm_86) by default."
  }
  assert {
    condition     = output.node_groups["cpu-inference"].capacity_type == "SPOT" && length(output.node_groups["cpu-inference"].instance_types) >= 3
    error_message = "CPU inference runs on SPOT capacity over several instance types."
  }
  assert {
    condition     = output.node_groups["cpu-inference"].labels["node.kubernetes.io/pool"] == "cpu-inference"
    error_message = "Model servers select node.kubernetes.io/pool=cpu-inference."
  }
  assert {
    condition     = alltrue([for t in output.node_groups["memory"].instance_types : startswith(t, "r5.")])
    error_message = "The memory pool is r5."
  }

  # --- IAM: no wildcard action anywhere ---------------------------------------------------
  assert {
    condition = alltrue(flatten([
      for name, doc in output.iam_policy_documents : [
        for s in jsondecode(doc).Statement : [for a in flatten([s.Action]) : !strcontains(a, "*")]
      ]
    ]))
    error_message = "An IAM or key policy grants a wildcard ('*') action."
  }
  assert {
    condition     = length(output.iam_policy_documents) >= 9
    error_message = "Every hand-written policy (functions, state machines, key, IRSA roles) must be audited."
  }

  # --- state machines get real ARNs -------------------------------------------------------
  assert {
    condition     = alltrue([for d in values(output.state_machine_definitions) : !strcontains(d, "$${") && can(jsondecode(d))])
    error_message = "A state machine definition still holds a $${...} placeholder, or is not JSON."
  }
  assert {
    condition = alltrue([
      for f in ["validate_dataset", "launch_training", "check_training", "evaluate_model", "register_model", "record_run_failure"] :
      strcontains(output.state_machine_definitions.training, module.functions.function_arns[f])
    ])
    error_message = "The training definition must call the real task Lambda ARNs."
  }
  assert {
    condition     = strcontains(output.state_machine_definitions.rollout, module.functions.function_arns["reconcile_rollout"])
    error_message = "The rollout definition must call the real reconcile_rollout ARN."
  }

  # --- settings the functions read (docs/contracts.md) ------------------------------------
  assert {
    condition = alltrue([
      for k in [
        "CONTROL_REGION", "CONTROL_DATA_BUCKET", "CONTROL_ARTIFACTS_BUCKET", "CONTROL_REGISTRY_TABLE",
        "CONTROL_TRAINING_STATE_MACHINE_ARN", "CONTROL_ROLLOUT_STATE_MACHINE_ARN", "CONTROL_DEAD_LETTER_QUEUE_URL",
        "CONTROL_CLUSTER", "CONTROL_EKS_CLUSTER_NAME", "CONTROL_TRAINING_NAMESPACE", "CONTROL_SERVING_NAMESPACE",
        "CONTROL_TRAINING_IMAGE", "CONTROL_INFERENCE_IMAGE", "CONTROL_CHECKPOINT_CLAIM", "CONTROL_PROMETHEUS_URL",
        "CONTROL_API_AUTH", "CONTROL_INGRESS_SCHEME", "CONTROL_INGRESS_CERTIFICATE_ARN",
        "CONTROL_ALERT_TOKEN_SECRET_ARN", "CONTROL_CODE_VERSION", "CONTROL_TRAINING_NODE_CAPACITY",
      ] : contains(keys(nonsensitive(output.control_settings)), k)
    ])
    error_message = "A CONTROL_* setting of docs/contracts.md is missing from the functions' environment."
  }
  assert {
    condition = (
      nonsensitive(output.control_settings["CONTROL_DEAD_LETTER_QUEUE_URL"]) == output.dead_letter_queue_url
      && nonsensitive(output.control_settings["CONTROL_ALERT_TOKEN_SECRET_ARN"]) == output.alert_token_secret_arn
      && nonsensitive(output.control_settings["CONTROL_TRAINING_NAMESPACE"]) == "ml-training"
      && nonsensitive(output.control_settings["CONTROL_API_AUTH"]) == "iam"
      && !contains(keys(nonsensitive(output.control_settings)), "CONTROL_API_TOKEN")
      && nonsensitive(output.control_settings["CONTROL_INGRESS_SCHEME"]) == "internal"
      && nonsensitive(output.control_settings["CONTROL_SERVING_NAMESPACE"]) == "ml-serving"
      && nonsensitive(output.control_settings["CONTROL_CHECKPOINT_CLAIM"]) == "training-checkpoints"
      && nonsensitive(output.control_settings["CONTROL_TRAINING_STATE_MACHINE_ARN"]) == "arn:aws:states:eu-west-1:123456789012:stateMachine:mlcp-test-training-pipeline"
      # g5.2xlarge, the smaller type of the default gpu-training group, and what the DaemonSets on
      # every node and on the gpu-training pool request (instance_types.json)
      && jsondecode(nonsensitive(output.control_settings["CONTROL_TRAINING_NODE_CAPACITY"])) == { vcpus = 8, memory_mib = 32768, gpus = 1, max_pods = 58, daemonset_cpu_millicores = 275, daemonset_memory_mib = 472 }
    )
    error_message = "The functions' settings must come from the resources that hold them."
  }
  assert {
    condition     = output.function_names["on_dataset_uploaded"] == "mlcp-test-on_dataset_uploaded" && length(output.function_names) == 13
    error_message = "Functions are named mlcp-<env>-<name>, thirteen of them."
  }
}

run "network_flow_logs_and_endpoints" {
  command = apply
  module {
    source = "../../modules/network"
  }
  variables {
    name               = "mlcp-test"
    cluster_name       = "mlcp-test"
    vpc_cidr           = "10.40.0.0/16"
    availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/test"
  }

  assert {
    condition     = length(aws_subnet.private) == 3 && length(aws_subnet.public) == 3 && length(aws_nat_gateway.this) == 3
    error_message = "Three zones, each with a public and a private subnet and its own NAT gateway."
  }
  assert {
    condition     = aws_flow_log.this.traffic_type == "ALL" && aws_cloudwatch_log_group.flow_logs.kms_key_id == var.kms_key_arn
    error_message = "Flow logs record all traffic into an encrypted log group."
  }
  assert {
    condition     = alltrue([for s in ["ecr.api", "ecr.dkr", "sts", "logs"] : contains(keys(aws_vpc_endpoint.interface), s)]) && length(aws_vpc_endpoint.gateway) == 2
    error_message = "VPC endpoints for S3, DynamoDB, ECR, STS and CloudWatch Logs."
  }
  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group allows nothing."
  }
}
