output "training_state_machine_arn" {
  description = "ARN of the training pipeline (CONTROL_TRAINING_STATE_MACHINE_ARN)."
  value       = aws_sfn_state_machine.training.arn
}

output "rollout_state_machine_arn" {
  description = "ARN of the rollout state machine (CONTROL_ROLLOUT_STATE_MACHINE_ARN)."
  value       = aws_sfn_state_machine.rollout.arn
}

output "training_definition" {
  description = "The training definition as deployed, placeholders filled."
  value       = aws_sfn_state_machine.training.definition
}

output "rollout_definition" {
  description = "The rollout definition as deployed, placeholders filled."
  value       = aws_sfn_state_machine.rollout.definition
}

output "policy_json" {
  description = "The state machines' IAM policy, as JSON (for audits and tests)."
  value       = jsonencode(local.state_machine_policy)
}
