output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "IPv4 range of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "Private subnets, one per zone, in zone order: nodes, Lambdas, EFS mount targets."
  value       = [for az in var.availability_zones : aws_subnet.private[az].id]
}

output "public_subnet_ids" {
  description = "Public subnets, one per zone, in zone order: NAT gateways and internet-facing load balancers."
  value       = [for az in var.availability_zones : aws_subnet.public[az].id]
}

output "subnet_cidrs" {
  description = "CIDR of every subnet, by tier and zone."
  value       = { private = local.private_cidrs, public = local.public_cidrs }
}

output "nat_gateway_count" {
  description = "How many NAT gateways were made (a cost figure)."
  value       = length(aws_nat_gateway.this)
}
