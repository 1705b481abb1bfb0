"""Diana plugin diana-dicom-mock: reproducible mock DICOM studies (valid files with pixels), devices and sites."""

from diana_mock.dixels import MockInstance, MockSeries, MockStudy, reset_mock_seed
from diana_mock.site import MockDevice, MockService, MockSite

__all__ = ["MockDevice", "MockInstance", "MockSeries", "MockService", "MockSite", "MockStudy", "reset_mock_seed"]
