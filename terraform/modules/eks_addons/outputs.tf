output "addon_names" {
  description = "Add-ons installed."
  value       = sort(keys(aws_eks_addon.this))
}
