# The model registry, run records, deployment states and dead letters: one table, shaped by
# the access patterns in docs/contracts.md. On-demand billing: traffic is bursty and small.
resource "aws_dynamodb_table" "registry" {
  name                        = var.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.deletion_protection
  # A global table needs the stream; it also feeds the replica in the DR region.
  stream_enabled   = var.replica_region != null
  stream_view_type = var.replica_region != null ? "NEW_AND_OLD_IMAGES" : null

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "sk"
    type = "S"
  }

  attribute {
    name = "gsi1pk"
    type = "S"
  }

  attribute {
    name = "gsi1sk"
    type = "S"
  }

  global_secondary_index {
    name            = "gsi1"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  # DR: a replica in the DR region (global table, replication lag typically under a second), so the
  # stated RPO (15 minutes) holds for a region loss too; it has its own PITR and KMS key.
  dynamic "replica" {
    for_each = var.replica_region == null ? [] : [var.replica_region]
    content {
      region_name            = replica.value
      kms_key_arn            = var.replica_kms_key_arn
      point_in_time_recovery = true
      propagate_tags         = true
    }
  }
}
