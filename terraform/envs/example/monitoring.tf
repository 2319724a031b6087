# Spot interruption warnings as a CloudWatch metric: EventBridge counts this rule's matches
# (AWS/Events TriggeredRules by RuleName), which the CloudWatch exporter (terraform/addons,
# dashboards/cloudwatch_exporter.yml) turns into the Infrastructure dashboard's "Spot
# interruption warnings". Counting needs no target.
resource "aws_cloudwatch_event_rule" "spot_interruption" {
  name        = "${local.name}-spot-interruption"
  description = "EC2 Spot Instance Interruption Warnings of the platform's spot node groups (counted, not delivered)."
  event_pattern = jsonencode({
    source        = ["aws.ec2"]
    "detail-type" = ["EC2 Spot Instance Interruption Warning"]
  })
}
