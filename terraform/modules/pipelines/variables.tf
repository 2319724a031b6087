variable "name_prefix" {
  description = "Prefix of the state machine names (mlcp-<env>)."
  type        = string
}

variable "training_state_machine_name" {
  description = "Name of the training pipeline state machine."
  type        = string
}

variable "rollout_state_machine_name" {
  description = "Name of the blue-green rollout state machine."
  type        = string
}

variable "definitions_dir" {
  description = "Folder that holds training_pipeline.asl.json and rollout.asl.json (the repository's statemachines/)."
  type        = string
}

variable "function_arns" {
  description = "ARN of every task Lambda, by contract name; each fills the $${<name>_arn} placeholder of the definitions."
  type        = map(string)

  validation {
    condition     = alltrue([for f in ["validate_dataset", "stage_dataset", "launch_training", "check_training", "evaluate_model", "register_model", "record_run_failure", "start_rollout", "reconcile_rollout"] : contains(keys(var.function_arns), f)])
    error_message = "function_arns must hold validate_dataset, stage_dataset, launch_training, check_training, evaluate_model, register_model, record_run_failure, start_rollout and reconcile_rollout."
  }
}

variable "kms_key_arn" {
  description = "KMS key of the state machines' data and log groups."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep execution logs."
  type        = number
  default     = 365
}
