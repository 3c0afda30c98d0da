-- Argo CD action "run-now": ask the tep operator for one run of this TestPlan, now.
-- It sets the annotation tep.dev/run-requested-at to the current UTC time (ISO 8601). The
-- operator starts one Job per new value and records the value in status.lastRunRequest, so
-- the same value never runs twice: an Argo CD re-sync (or self-heal) cannot start extra runs.
-- Annotations are not part of the Git source unless you put them there, so there is no drift.
local os = require("os")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["tep.dev/run-requested-at"] = os.date("!%Y-%m-%dT%H:%M:%SZ")
return obj
