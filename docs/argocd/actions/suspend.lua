-- Argo CD action "suspend": spec.enabled = false (the CronJob is suspended; manual runs work).
-- This writes the TestPlan's spec, which Git owns: the Application shows OutOfSync until Git
-- says the same, and automated sync with selfHeal puts the Git value back. Prefer changing
-- spec.enabled in Git; use this action for a quick stop while that change is on its way.
obj.spec.enabled = false
return obj
