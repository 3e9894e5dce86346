"""The Mesa de Coordinación: its schedule and settings, meetings and their agendas, minutes and agreements."""
