-- Argo CD health check of tep.dev/TestPlan (resource.customizations.health.tep.dev_TestPlan).
-- Argo CD passes the live object as the global `obj`; the script returns hs = {status, message}.
--
--   no status yet, or status.observedGeneration < metadata.generation  -> Progressing
--   phase Invalid                                -> Degraded  (message of the Valid condition)
--   phase Running                                -> Progressing
--   condition LastRunSucceeded False             -> Degraded  (its message)
--   phase Suspended (last run ok, or none yet)   -> Suspended (spec.enabled: false; a manual run still works)
--   phase Scheduled (last run ok, or none yet)   -> Healthy
--   any other phase                              -> Unknown
local hs = {}

local function condition(ctype)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function nonempty(s)
  return s ~= nil and s ~= ""
end

if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the tep operator to process the TestPlan"
  return hs
end

local generation = obj.metadata ~= nil and obj.metadata.generation or nil
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the tep operator to observe generation " .. tostring(generation)
  return hs
end

local phase = obj.status.phase

if phase == "Invalid" then
  local valid = condition("Valid")
  hs.status = "Degraded"
  if valid ~= nil and nonempty(valid.message) then
    hs.message = valid.message
  else
    hs.message = "The TestPlan is invalid"
  end
  return hs
end

if phase == "Running" then
  hs.status = "Progressing"
  hs.message = "A run is in progress"
  return hs
end

local lastRun = condition("LastRunSucceeded")
if lastRun ~= nil and lastRun.status == "False" then
  hs.status = "Degraded"
  if nonempty(lastRun.message) then
    hs.message = lastRun.message
  elseif obj.status.lastRun ~= nil and nonempty(obj.status.lastRun.result) then
    hs.message = "Last run " .. tostring(obj.status.lastRun.name) .. ": " .. obj.status.lastRun.result
  else
    hs.message = "The last run did not succeed"
  end
  return hs
end

local lastPart = "no run yet"
if lastRun ~= nil and lastRun.status == "True" then
  lastPart = "last run passed"
end

if phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "Schedule suspended (spec.enabled: false); " .. lastPart
  return hs
end

if phase == "Scheduled" then
  hs.status = "Healthy"
  if nonempty(obj.status.nextRunTime) then
    hs.message = "Next run at " .. obj.status.nextRunTime .. "; " .. lastPart
  else
    hs.message = "Scheduled; " .. lastPart
  end
  return hs
end

hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
