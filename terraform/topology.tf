# -----------------------------------------------------------------------------
# The topology, read from the ONE file the Python code reads too.
#
# Adding an event type or a function to shared/topology.json must never need an
# edit here: every resource below iterates these collections with for_each.
# The derivations are deliberately plain so tests/unit/test_terraform.py can
# re-derive the same collections from the JSON in Python and compare:
#
#   topics                    = { event_type => event_types[event_type].topic }
#   dead_letter_topics        = { event_type => event_types[event_type].dead_letter_topic }
#   dead_letter_subscriptions = { event_type => event_types[event_type].dead_letter_subscription }
#   push_subscriptions        = { subscription name => { event_type, topic, function } }
#                               one per entry of each event type's "subscriptions" map
#   http_functions            = functions whose trigger == "http"
#   subscriber_functions      = functions whose trigger == "pubsub" (all use Cloud SQL)
#   edge_db_functions         = HTTP functions with a database_role (their own DB user)
#   public_functions          = functions whose public == true
#   publish_grants            = { "function/event_type" } for every function's `publishes`
# -----------------------------------------------------------------------------

locals {
  topology = jsondecode(file("${path.module}/../shared/topology.json"))

  topics                    = { for event_type, et in local.topology.event_types : event_type => et.topic }
  dead_letter_topics        = { for event_type, et in local.topology.event_types : event_type => et.dead_letter_topic }
  dead_letter_subscriptions = { for event_type, et in local.topology.event_types : event_type => et.dead_letter_subscription }

  push_subscriptions = merge([
    for event_type, et in local.topology.event_types : {
      for subscription, function in et.subscriptions : subscription => {
        event_type = event_type
        topic      = et.topic
        function   = function
        # A subscription's own retry policy (topology `retry_policies`), else the variables'.
        retry = try(et.retry_policies[subscription], {})
      }
    }
  ]...)

  functions            = local.topology.functions
  http_functions       = { for name, fn in local.topology.functions : name => fn if fn.trigger == "http" }
  subscriber_functions = { for name, fn in local.topology.functions : name => fn if fn.trigger == "pubsub" }
  public_functions     = { for name, fn in local.topology.functions : name => fn if fn.public }

  # Cloud SQL users: every subscriber, and every HTTP function with a `database_role` (the
  # console), which logs in as its own IAM database user, member of that role only.
  edge_db_functions = { for name, fn in local.http_functions : name => fn if try(fn.database_role, null) != null }
  db_functions      = merge(local.subscriber_functions, local.edge_db_functions)

  # (function, event type) pairs: topic-level publisher grants for EVERY function
  # whose topology entry `publishes` (HTTP edge and subscribers alike, e.g. the
  # assistant publishes reply_requested and stage_changed).
  publish_grants = merge([
    for name, fn in local.functions : {
      for event_type in fn.publishes : "${name}/${event_type}" => {
        function   = name
        event_type = event_type
      }
    }
  ]...)

  # Deployed names: Cloud Run service names allow no underscores.
  function_names = { for name, fn in local.topology.functions : name => "${var.name_prefix}${replace(name, "_", "-")}" }
}
