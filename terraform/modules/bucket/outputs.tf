output "id" {
  description = "Bucket name."
  value       = aws_s3_bucket.this.id
}

output "arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.this.arn
}

output "versioning_id" {
  description = "Id of the versioning configuration (replication must wait for it)."
  value       = aws_s3_bucket_versioning.this.id
}
