-- Argo CD action "resume": spec.enabled = true (scheduled runs start again).
-- Like "suspend", this writes spec, which Git owns; see suspend.lua.
obj.spec.enabled = true
return obj
