# Scheduled functions (functions/chalicelib/schedules.py holds the same rates; a contract test
# compares them): an EventBridge rule per function invokes it with the "Scheduled Event" payload.
locals {
  schedules = {
    # A rollback intent (or a rollout) whose reconcile loop never started, because the process that
    # recorded it died first, is started by the sweep within this.
    sweep_rollouts = "rate(1 minute)"
  }
}

resource "aws_cloudwatch_event_rule" "schedule" {
  for_each = local.schedules

  name                = "${var.name_prefix}-${each.key}"
  description         = "Invokes ${local.function_names[each.key]} on its schedule"
  schedule_expression = each.value
}

resource "aws_cloudwatch_event_target" "schedule" {
  for_each = local.schedules

  rule = aws_cloudwatch_event_rule.schedule[each.key].name
  arn  = aws_lambda_function.this[each.key].arn

  retry_policy {
    maximum_retry_attempts       = 0 # the next run is a retry
    maximum_event_age_in_seconds = 60
  }
}

resource "aws_lambda_permission" "events_invoke_schedule" {
  for_each = local.schedules

  statement_id  = "AllowSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[each.key].arn
}
