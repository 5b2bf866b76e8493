-- Ceilings C1 (static file from nginx) and C2 (GET /healthz through nginx and
-- the pay-api framework, no database): the URL given to wrk, unchanged, on
-- every request. Only the status counting and the result line of common.lua.
require "common"
