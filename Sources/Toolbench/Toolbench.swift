// Toolbench
