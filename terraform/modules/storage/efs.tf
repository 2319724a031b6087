resource "aws_efs_file_system" "checkpoints" {
  creation_token   = "${var.name}-checkpoints"
  encrypted        = true
  kms_key_id       = var.kms_key_arn
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  tags = { Name = "${var.name}-checkpoints" }
}

resource "aws_efs_backup_policy" "checkpoints" {
  file_system_id = aws_efs_file_system.checkpoints.id
  backup_policy {
    status = "ENABLED"
  }
}

resource "aws_efs_file_system_policy" "checkpoints" {
  file_system_id = aws_efs_file_system.checkpoints.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyWithoutTls"
      Effect    = "Deny"
      Principal = { AWS = "*" }
      Action    = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite", "elasticfilesystem:ClientRootAccess"]
      Resource  = aws_efs_file_system.checkpoints.arn
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })
}

resource "aws_security_group" "efs" {
  name        = "${var.name}-efs-checkpoints"
  description = "NFS from the EKS nodes to the checkpoint file system"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.name}-efs-checkpoints" }
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_nodes" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from EKS nodes"
  referenced_security_group_id = var.nfs_client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
}

resource "aws_efs_mount_target" "checkpoints" {
  count = length(var.subnet_ids)

  file_system_id  = aws_efs_file_system.checkpoints.id
  subnet_id       = var.subnet_ids[count.index]
  security_groups = [aws_security_group.efs.id]
}

# Training pods mount the claim `training-checkpoints` (docs/contracts.md) bound to this access
# point: every pod writes as uid/gid 1000 under /checkpoints, whatever its image does.
resource "aws_efs_access_point" "checkpoints" {
  file_system_id = aws_efs_file_system.checkpoints.id

  posix_user {
    uid = 1000
    gid = 1000
  }

  root_directory {
    path = "/checkpoints"
    creation_info {
      owner_uid   = 1000
      owner_gid   = 1000
      permissions = "0750"
    }
  }

  tags = { Name = "${var.name}-training-checkpoints" }
}
