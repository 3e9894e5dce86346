"""The Mesa de Coordinación: meetings, agendas, minutes, agreements and case transfers."""
