output "data_bucket" {
  description = "Bucket of the datasets (name and ARN)."
  value       = { id = module.data_bucket.id, arn = module.data_bucket.arn }
}

output "artifacts_bucket" {
  description = "Bucket of the model artifacts (name and ARN)."
  value       = { id = module.artifacts_bucket.id, arn = module.artifacts_bucket.arn }
}

output "logs_bucket" {
  description = "Bucket of the S3 server access logs (name and ARN)."
  value       = { id = module.logs_bucket.id, arn = module.logs_bucket.arn }
}

output "artifacts_replica_bucket" {
  description = "Replica of the artifacts bucket in the DR region, or null."
  value       = local.replicate ? module.artifacts_replica[0].id : null
}

output "data_replica_bucket" {
  description = "Replica of the data bucket's datasets/ in the DR region, or null."
  value       = local.replicate ? module.data_replica[0].id : null
}

output "efs_replica_file_system_id" {
  description = "Id of the read-only replica of the checkpoint file system in the DR region (known after apply), or null."
  value       = local.replicate ? one(aws_efs_replication_configuration.checkpoints[0].destination).file_system_id : null
}

output "efs_file_system_id" {
  description = "Id of the checkpoint file system."
  value       = aws_efs_file_system.checkpoints.id
}

output "efs_access_point_id" {
  description = "Id of the checkpoint access point (volumeHandle <fs>::<ap> of the training-checkpoints volume)."
  value       = aws_efs_access_point.checkpoints.id
}

output "replica_kms_key_arn" {
  description = "KMS key in the DR region (the artifacts and datasets replicas, the checkpoint file system's replica and the registry's replica), or null."
  value       = local.replicate ? aws_kms_key.replica[0].arn : null
}

output "checkpoint_file_system" {
  description = "What a Lambda needs to mount the checkpoint file system: access point ARN (available once the mount targets are), file system ARN, security group."
  value = {
    access_point_arn  = aws_efs_access_point.checkpoints.arn
    file_system_arn   = aws_efs_file_system.checkpoints.arn
    security_group_id = aws_security_group.efs.id
  }
  # A Lambda's file_system_config fails to create before the mount targets exist.
  depends_on = [aws_efs_mount_target.checkpoints]
}
