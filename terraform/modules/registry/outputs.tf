output "table_name" {
  description = "Registry table name (CONTROL_REGISTRY_TABLE)."
  value       = aws_dynamodb_table.registry.name
}

output "table_arn" {
  description = "Registry table ARN."
  value       = aws_dynamodb_table.registry.arn
}

output "replica_regions" {
  description = "Regions holding a replica of the table (DR)."
  value       = [for r in aws_dynamodb_table.registry.replica : r.region_name]
}
